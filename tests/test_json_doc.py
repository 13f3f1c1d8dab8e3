"""Every command's real JSON holds the keys docs/cli.md documents for it (issue 12, item 7:
`ese simulate` wrote `pe` where the doc said `per_pe`, `ese data synth` `utterances.<split>`
where it said `splits.<split>.utterances`). `ese run`'s report is checked in test_pipeline.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from doc_keys import documented_keys, missing

from ese.config import Config
from ese.model.checkpoint import save_checkpoint
from ese.model.lstmp import AcousticModel

DOC = documented_keys()
ELSEWHERE = {"ese run": "tests/test_pipeline.py (needs the finished tiny run)",
             "ese bench": "not run: it times engines for a minute on a loaded machine",
             "ese tune": "tests/compress/test_tune.py (needs a trained model)"}


def _check(title: str, obj: object) -> None:
    lacking = [m for key in DOC[title] for m in missing(obj, key)]
    assert not lacking, f"{title}: documented in docs/cli.md but not in its JSON: {lacking}"


def _ese(tmp: Path, *args: str) -> dict:
    out = tmp / "out.json"
    proc = subprocess.run([sys.executable, "-m", "ese", *args, "--json", str(out)], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    sys.path.insert(0, str(Path(__file__).parent / "accel"))
    from accel_models import random_qmodel

    from ese.compress.qmodel import save_qmodel

    root = tmp_path_factory.mktemp("doc")
    cfg = Config.load(preset="tiny")
    torch.manual_seed(0)
    save_checkpoint(root / "ck.pt", AcousticModel(cfg.model), config=cfg.to_dict())
    save_qmodel(root / "m.qnpz", random_qmodel(D=6, H=8, P=4, density=0.4))
    return root


def test_every_documented_command_is_checked():
    checked = {"ese data synth", "ese data info", "ese data convert", "ese data features", "ese train", "ese eval",
               "ese compile", "ese inspect", "ese simulate", "ese rtl sim", "ese import", "ese export", "ese complete"}
    assert set(DOC) == checked | set(ELSEWHERE)


def test_the_doc_names_the_renamed_keys():
    assert "per_pe.{busy,idle,stalled,busy_spread,idle_spread,stalled_spread}" in DOC["ese simulate"]
    assert "splits.<split>.{utterances,speakers,hours}" in DOC["ese data synth"]
    assert missing({"pe": {}}, "per_pe") == ["per_pe"]  # the check itself can fail


@pytest.mark.slow  # CLI subprocesses that train, synthesize or simulate
def test_data_synth(tmp_path):
    """The summary `ese data synth` writes, from per-speaker results (no synthesizer needed)."""
    from ese.data.synth.corpus import _summarise

    results = [{"split": s, "samples": [16000, 8000], "unmapped": {}, "written": 2, "skipped": 0}
               for s in ("train", "dev", "test")]
    _check("ese data synth", json.loads(json.dumps(_summarise(results, 1.0, 1))))


def test_data_commands(tone_corpus, tmp_path):
    _check("ese data info", _ese(tmp_path, "data", "info", str(tone_corpus)))
    _check("ese data features", _ese(tmp_path, "data", "features", "--corpus", str(tone_corpus), "--split", "dev",
                                     "--quiet"))


def test_data_convert_and_info_of_a_word_corpus(tmp_path):
    from corpus_factory import make_word_corpus

    src = make_word_corpus(tmp_path / "src", speakers=1, utts=2, oov={"MTR00/SX101": "zzxqv"})
    _check("ese data convert", _ese(tmp_path, "data", "convert", str(src), str(tmp_path / "ls")))
    info = _ese(tmp_path, "data", "info", str(tmp_path / "ls"))
    _check("ese data info", info)
    assert info["train"]["oov_words"] == ["zzxqv"] and info["train"]["oov_utterances"] == 1


@pytest.mark.slow  # CLI subprocesses that train, synthesize or simulate
def test_train_and_eval(tone_corpus, files, tmp_path):
    _check("ese train", _ese(tmp_path, "train", "--corpus", str(tone_corpus), "--out", str(tmp_path / "m.pt"),
                             "--preset", "tiny", "--set", "train.epochs=1", "--quiet"))
    _check("ese eval", _ese(tmp_path, "eval", str(files / "ck.pt"), "--corpus", str(tone_corpus), "--split", "dev",
                            "--quiet"))


def test_complete(files, tone_corpus, tmp_path):
    _check("ese complete", _ese(tmp_path, "complete", str(files / "ck.pt"), "--corpus", str(tone_corpus),
                                "--out", str(tmp_path / "complete.pt"), "--quiet"))


def test_compile_inspect_simulate(files, tmp_path):
    image = tmp_path / "m.ese"
    _check("ese compile", _ese(tmp_path, "compile", str(files / "m.qnpz"), "--pes", "2", "--out", str(image)))
    _check("ese inspect", _ese(tmp_path, "inspect", str(image)))
    _check("ese simulate", _ese(tmp_path, "simulate", str(image), "--frames", "2"))


@pytest.mark.slow  # CLI subprocesses that train, synthesize or simulate
def test_rtl_sim(files, tmp_path):
    _check("ese rtl sim", _ese(tmp_path, "rtl", "sim", str(files / "m.qnpz"), "--pes", "2", "--frames", "1",
                               "--out", str(tmp_path / "sim")))


@pytest.mark.slow  # CLI subprocesses that train, synthesize or simulate
def test_import(tmp_path):
    from torch import nn

    state = {**{f"lstm.{k}": v for k, v in nn.LSTM(153, 8, proj_size=4).state_dict().items()},
             **{f"fc.{k}": v for k, v in nn.Linear(4, 48).state_dict().items()}}
    torch.save(state, tmp_path / "theirs.pt")
    _check("ese import", _ese(tmp_path, "import", str(tmp_path / "theirs.pt"), "--out", str(tmp_path / "m.pt")))


@pytest.mark.slow  # CLI subprocesses that train, synthesize or simulate
def test_export(files, tmp_path):
    cfg = Config.load(preset="tiny")
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "ck.pt", AcousticModel(cfg.model), config=cfg.to_dict())
    for to in ("torch", "onnx"):
        _check("ese export", _ese(tmp_path, "export", str(tmp_path / "ck.pt"), "--to", to, "--drop-peepholes",
                                  "--out", str(tmp_path / f"m.{to}")))
