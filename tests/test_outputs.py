"""Read-only and full disks: every command refuses with one line naming the path and the cause,
before its work starts where it can, and leaves the old files as they were (issue 12, item 5)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from deploy_models import unit_normalisation
from ese.config import Config
from ese.errors import OutputError
from ese.model.checkpoint import save_checkpoint
from ese.model.lstmp import AcousticModel
from ese.outputs import check_writable

FAULTS = Path(__file__).parent / "fs_faults.py"
CAUSE = {"readonly": "read-only file system", "full": "no space left on device (the disk is full)"}


def _ese_faulty(mode: str, directory: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(FAULTS), mode, str(directory), *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def _one_line(proc: subprocess.CompletedProcess, path: str, cause: str) -> None:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [f"error: cannot write {path!r}: {cause}"]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """A tiny checkpoint, a fixed-point model, a WAV, and a 'bad' directory holding old files."""
    sys.path.insert(0, str(Path(__file__).parent / "accel"))
    from accel_models import random_qmodel

    from ese.compress.qmodel import save_qmodel

    root = tmp_path_factory.mktemp("outputs")
    cfg = Config.load(preset="tiny")
    torch.manual_seed(0)
    save_checkpoint(root / "ck.pt", AcousticModel(cfg.model), config=cfg.to_dict(),
                    normalisation=unit_normalisation(cfg.features))
    save_qmodel(root / "m.qnpz", random_qmodel(D=10, H=16, P=8, density=0.3))
    sf.write(root / "a.wav", (0.1 * np.random.default_rng(0).normal(size=8000)).astype(np.float32), 16000,
             subtype="PCM_16")
    return root


@pytest.fixture
def bad(tmp_path: Path) -> Path:
    d = tmp_path / "bad"
    d.mkdir()
    for name in ("out.json", "m.ese", "model.pt"):
        (d / name).write_text("old\n")
    return d


def _old_intact(bad: Path) -> None:
    assert sorted(p.name for p in bad.iterdir()) == ["m.ese", "model.pt", "out.json"]
    assert all((bad / n).read_text() == "old\n" for n in ("out.json", "m.ese", "model.pt"))


@pytest.mark.parametrize("mode", ["readonly", "full"])
def test_compile_image_and_report(files, bad, mode):
    proc = _ese_faulty(mode, bad, "compile", str(files / "m.qnpz"), "--pes", "2", "--out", "bad/m.ese",
                       cwd=bad.parent)
    _one_line(proc, "bad/m.ese", CAUSE[mode])
    _old_intact(bad)


@pytest.mark.parametrize("mode", ["readonly", "full"])
def test_compile_writes_all_of_its_outputs_or_none(files, bad, tmp_path, mode):
    good = tmp_path / "good"
    proc = _ese_faulty(mode, bad, "compile", str(files / "m.qnpz"), "--pes", "2", "--out", str(good / "m.ese"),
                       "--json", "bad/out.json", cwd=tmp_path)
    _one_line(proc, "bad/out.json", CAUSE[mode])
    assert not good.exists() or not list(good.iterdir())  # the image is not left without its report
    _old_intact(bad)


@pytest.mark.parametrize("mode", ["readonly", "full"])
def test_simulate_json(files, bad, mode):
    proc = _ese_faulty(mode, bad, "simulate", str(files / "m.qnpz"), "--pes", "2", "--frames", "2",
                       "--json", "bad/out.json", cwd=bad.parent)
    _one_line(proc, "bad/out.json", CAUSE[mode])
    _old_intact(bad)


@pytest.mark.slow  # a CLI subprocess per mode
@pytest.mark.parametrize("mode", ["readonly", "full"])
def test_transcribe_json(files, bad, mode):
    proc = _ese_faulty(mode, bad, "transcribe", str(files / "ck.pt"), str(files / "a.wav"),
                       "--json", "bad/out.json", cwd=bad.parent)
    _one_line(proc, "bad/out.json", CAUSE[mode])
    _old_intact(bad)


def test_train_out_is_checked_before_any_work(tone_corpus, bad):
    proc = _ese_faulty("readonly", bad, "train", "--corpus", str(tone_corpus), "--out", "bad/model.pt",
                       "--preset", "tiny", "--quiet", cwd=bad.parent)
    _one_line(proc, "bad/model.pt", CAUSE["readonly"])
    _old_intact(bad)


def test_eval_cache_dir(files, tone_corpus, bad):
    proc = _ese_faulty("readonly", bad, "eval", str(files / "ck.pt"), "--corpus", str(tone_corpus),
                       "--cache-dir", "bad/cache", "--quiet", cwd=bad.parent)
    _one_line(proc, "bad/cache", CAUSE["readonly"])
    _old_intact(bad)


@pytest.mark.parametrize("args", [["data", "synth", "bad/corpus", "--preset", "tiny", "--quiet"],
                                  ["rtl", "export", "{qnpz}", "--out", "bad/rtl", "--no-lint"],
                                  ["run", "--workdir", "bad/run", "--preset", "tiny", "--quiet"]],
                         ids=["data synth", "rtl export", "run"])
def test_output_directories(files, bad, args):
    args = [a.replace("{qnpz}", str(files / "m.qnpz")) for a in args]
    proc = _ese_faulty("readonly", bad, *args, cwd=bad.parent)
    _one_line(proc, args[args.index("--out") + 1] if "--out" in args else
              args[args.index("--workdir") + 1] if "--workdir" in args else args[2], CAUSE["readonly"])
    _old_intact(bad)


def test_checkpoint_save_on_a_full_disk_says_so(bad):
    """torch's own writer says only 'basic_ios::clear: iostream error'."""
    sys.path.insert(0, str(Path(__file__).parent))
    import fs_faults

    code = ("import sys; sys.path.insert(0, %r); import fs_faults; fs_faults.install('full', %r)\n"
            "from ese.config import ModelConfig; from ese.model.lstmp import AcousticModel\n"
            "from ese.model.checkpoint import save_checkpoint\n"
            "save_checkpoint(%r, AcousticModel(ModelConfig(input_dim=4, hidden=4, proj=2, layers=1)))\n"
            % (str(Path(fs_faults.__file__).parent), str(bad), str(bad / "model.pt")))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert f"ese.errors.OutputError: cannot write {str(bad / 'model.pt')!r}: {CAUSE['full']}" in proc.stderr
    _old_intact(bad)


def test_check_writable_names_files_in_the_way(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match=r"cannot write '.*f/out\.json': .*not a directory"):
        check_writable([tmp_path / "f" / "out.json"])
    with pytest.raises(OutputError, match=r"cannot write into '.*f': it is a file, not a directory"):
        check_writable(dirs=[tmp_path / "f"])
    with pytest.raises(OutputError, match=r"cannot write '.*': it is a directory"):
        check_writable([tmp_path])
    check_writable([tmp_path / "new" / "deeper" / "x.json"], [tmp_path / "d"])  # missing parents are fine
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]  # the probe leaves nothing behind
