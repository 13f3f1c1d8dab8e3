import json
import subprocess
import sys

import pytest

from ese.compiler.image import load_program
from ese.config import Config
from ese.pipeline import run

pytestmark = pytest.mark.slow  # runs the tiny preset end to end (minutes)


@pytest.fixture(scope="module")
def finished_run(tone_corpus, tmp_path_factory):
    cfg = Config.load(preset="tiny", overrides=["train.epochs=8"])
    workdir = tmp_path_factory.mktemp("run")
    return cfg, workdir, run(cfg, workdir, corpus=tone_corpus, progress=False, rtl_frames=2)


def test_run_writes_the_report_and_learns(finished_run):
    cfg, workdir, report = finished_run
    for name in ("report.json", "report.md", "learning_curve.png", "model.pt"):
        assert (workdir / name).stat().st_size > 0
    on_disk = json.loads((workdir / "report.json").read_text())
    assert on_disk["per"]["test"]["per"] == report["per"]["test"]["per"]
    assert set(on_disk["timings"]) >= {"features_s", "train_s", "eval_s", "total_s"}
    history = on_disk["training"]["history"]
    assert len(history) == 8 and history[-1]["train_loss"] < history[0]["train_loss"]
    # 6 phone classes: chance frame accuracy is well under 30%, chance PER near 100%
    assert report["per"]["test"]["frame_acc"] > 80 and report["per"]["test"]["per"] < 40
    assert "| test |" in (workdir / "report.md").read_text()
    compiled = on_disk["compile"]  # the compile stage: an image that loads, and its figures
    assert load_program(workdir / "model.ese").hardware.pes == cfg.hardware.pes
    assert compiled["compression_ratio"] > 1 and compiled["nnz"] > 0
    assert "bits per non-zero" in (workdir / "report.md").read_text()
    sim = on_disk["simulate"]  # the cycle model on that image: its time explained term by term
    assert sim["cycles_per_frame"] >= sim["ideal_cycles_per_frame"] > 0
    assert sum(sim["breakdown"].values()) == pytest.approx(sim["cycles_per_frame"])
    assert "cycles per frame" in (workdir / "report.md").read_text()
    rtl = on_disk["rtl"]  # the RTL of that image on two test frames: bit- and cycle-exact
    assert rtl["frames"] == 2 and rtl["match"] and rtl["cycles_match"] and rtl["columns_match"]
    assert "## RTL" in (workdir / "report.md").read_text()


def test_rerun_resumes_instead_of_retraining(finished_run, tone_corpus):
    cfg, workdir, report = finished_run
    again = run(cfg, workdir, corpus=tone_corpus, progress=False)
    assert again["training"]["history"] == report["training"]["history"]
    assert again["per"] == report["per"]


def _ese(*args):
    return subprocess.run([sys.executable, "-m", "ese", *args], capture_output=True, text=True, timeout=300)


def test_eval_and_transcribe_commands(finished_run, tone_corpus, tmp_path):
    cfg, workdir, report = finished_run
    out = tmp_path / "eval.json"
    result = _ese("eval", str(workdir / "model.pt"), "--corpus", str(tone_corpus), "--split", "test",
                  "--json", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["per"]["test"]["per"] == pytest.approx(report["per"]["test"]["per"])
    wav = sorted((tone_corpus / "TEST").rglob("*.WAV"))[0]
    result = _ese("transcribe", str(workdir / "model.pt"), str(wav))
    assert result.returncode == 0, result.stderr
    phones = result.stdout.split(":", 1)[1].split()
    assert phones and set(phones) <= {"aa", "iy", "uw", "m", "s", "sh"}


def test_cpu_engine_flag_gives_the_same_scores(finished_run, tone_corpus, tmp_path):
    """--engine ese-cpu: the pruned float model scores as under PyTorch (float rounding may move a
    frame), the fixed-point model (--qmodel) exactly as the integer reference model scored it."""
    cfg, workdir, report = finished_run
    per = report["compression"]["per"]["test"]
    for extra, expected, tol in (([], per["pruned"], 1.0),
                                 (["--qmodel", str(workdir / "model.qnpz")], per["quantized"], 1e-9)):
        out = tmp_path / "eval.json"
        result = _ese("eval", str(workdir / "pruned.pt"), "--corpus", str(tone_corpus), "--split", "test",
                      "--engine", "ese-cpu", *extra, "--json", str(out), "--quiet")
        assert result.returncode == 0, result.stderr
        assert json.loads(out.read_text())["per"]["test"]["per"] == pytest.approx(expected, abs=tol), extra


def test_every_model_file_of_a_run_is_self_contained(finished_run):
    """What `ese run` writes carries its features, normalisation and phones, from the dense
    checkpoint to the image (issue 14): each transcribes on its own."""
    from ese.artefact import open_artefact

    _, workdir, _ = finished_run
    arts = [open_artefact(workdir / name) for name in ("model.pt", "pruned.pt", "model.qnpz", "model.ese")]
    assert [a.missing() for a in arts] == [[]] * 4
    assert all(a.normalisation == arts[0].normalisation and a.features == arts[0].features for a in arts)


def test_eval_refuses_a_corrupt_checkpoint(tmp_path, tone_corpus):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    result = _ese("eval", str(bad), "--corpus", str(tone_corpus))
    assert result.returncode == 1 and "bad.pt" in result.stderr and "Traceback" not in result.stderr


def test_report_has_the_keys_docs_cli_md_documents(finished_run):
    from doc_keys import documented_keys, missing

    _, workdir, _ = finished_run
    on_disk = json.loads((workdir / "report.json").read_text())
    lacking = [m for key in documented_keys()["ese run"] for m in missing(on_disk, key)]
    assert not lacking, f"report.json lacks keys docs/cli.md documents: {lacking}"


def test_run_writes_a_self_contained_html_report_that_renders(finished_run, tmp_path):
    """report.html: every stage's section, every plot inlined and decodable in Chromium, no errors."""
    import base64
    import re

    import matplotlib.image as mpimg
    from chromium_check import probe, screenshot

    cfg, workdir, report = finished_run
    page = (workdir / "report.html").read_text(encoding="utf-8")
    for title in ("Training: learning curve", "PER by stage", "Pruning: PER vs density",
                  "Quantization: weight-width sweep", "Cycle model: breakdown, utilisation, schedule",
                  "Engine speed"):
        assert f"<h2>{title}</h2>" in page, title
    # the RTL only when the last run of this directory had --rtl (the resume test reruns without)
    assert ("<h2>RTL</h2>" in page) == bool(json.loads((workdir / "report.json").read_text())["rtl"])
    assert "incomplete" not in page  # every stage of a fresh run draws
    assert not re.search(r'src="(?!data:)', page) and "<link" not in page  # nothing outside the file
    pngs = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(pngs) >= 8  # curve, PER by stage, density, sweep, breakdown, PEs, Gantt, speed
    assert all(base64.b64decode(p).startswith(b"\x89PNG") for p in pngs)

    result = probe(workdir / "report.html", tmp_path)
    assert result["images"] == len(pngs) and result["broken"] == [], result
    assert result["errors"] == [], result
    assert all(w > 100 and h > 100 for w, h in result["sizes"]), result["sizes"]
    shot = mpimg.imread(str(screenshot(workdir / "report.html", tmp_path / "report.png", tmp_path)))
    assert shot.shape[1] == 1200 and shot[..., :3].std() > 0.05  # not a blank page


def test_report_command_rebuilds_the_page_and_refuses_a_bare_directory(finished_run, tmp_path):
    cfg, workdir, report = finished_run
    result = _ese("report", str(workdir), "--out", str(tmp_path / "r.html"))
    assert result.returncode == 0, result.stderr
    assert "<h2>PER by stage</h2>" in (tmp_path / "r.html").read_text(encoding="utf-8")
    result = _ese("report", str(tmp_path))
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "has no report.json" in result.stderr


def _with_proxy(tone_corpus, tmp_path):
    """A copy of the corpus whose splits.json names the test speakers as the proxy split too."""
    import shutil

    corpus = tmp_path / "corpus"
    shutil.copytree(tone_corpus, corpus)
    splits = json.loads((corpus / "splits.json").read_text())
    (corpus / "splits.json").write_text(json.dumps({**splits, "proxy": splits["test"]}))
    return corpus


def test_proxy_split_is_scored_beside_test(finished_run, tone_corpus, tmp_path):
    """ese run's proxy stage and ese eval's default splits: scored like test (same speakers here)."""
    from ese.model.checkpoint import load_checkpoint
    from ese.pipeline import RunPaths, has_proxy, proxy_stage

    cfg, workdir, report = finished_run
    assert report["proxy"] is None and not has_proxy(tone_corpus)
    corpus = _with_proxy(tone_corpus, tmp_path)
    model, _ = load_checkpoint(workdir / "model.pt")
    proxy = proxy_stage(RunPaths(workdir, corpus), cfg, model, False)
    comp = report["compression"]["per"]["test"]
    assert proxy["per"]["dense"] == pytest.approx(report["per"]["test"]["per"])
    assert proxy["per"]["pruned"] == pytest.approx(comp["pruned"])
    assert proxy["per"]["quantized"] == pytest.approx(comp["quantized"])
    out = tmp_path / "eval.json"
    result = _ese("eval", str(workdir / "model.pt"), "--corpus", str(corpus), "--json", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    per = json.loads(out.read_text())["per"]
    assert set(per) == {"dev", "test", "proxy"} and per["proxy"]["per"] == pytest.approx(per["test"]["per"])


def test_train_init_starts_from_the_given_weights(finished_run, tone_corpus, tmp_path):
    cfg, workdir, report = finished_run
    losses = {}
    for name, extra in (("init", ["--init", str(workdir / "model.pt")]), ("scratch", [])):
        out = tmp_path / f"{name}.json"
        result = _ese("train", "--preset", "tiny", "--corpus", str(tone_corpus), "--out", str(tmp_path / f"{name}.pt"),
                      "--set", "train.epochs=1", *extra, "--json", str(out), "--quiet")
        assert result.returncode == 0, result.stderr
        losses[name] = json.loads(out.read_text())["history"][0]["dev_loss"]
    best = min(h["dev_loss"] for h in report["training"]["history"])
    assert losses["init"] < losses["scratch"] and losses["init"] < 2 * best
