"""``--threads`` reaches the training configuration, and a bad count is one line."""

import subprocess
import sys

import pytest

from ese.model.checkpoint import load_checkpoint


def _ese(*args):
    return subprocess.run([sys.executable, "-m", "ese", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.slow  # CLI subprocesses that train
def test_threads_flag_reaches_the_training_config(tone_corpus, tmp_path):
    out = tmp_path / "m.pt"
    proc = _ese("train", "--corpus", str(tone_corpus), "--out", str(out), "--preset", "tiny",
                "--set", "train.epochs=1", "--threads", "1", "--quiet")
    assert proc.returncode == 0, proc.stderr
    _, meta = load_checkpoint(out)
    assert meta["config"]["train"]["threads"] == 1


@pytest.mark.slow  # CLI subprocesses that train
def test_negative_threads_are_refused_in_one_line(tone_corpus, tmp_path):
    proc = _ese("train", "--corpus", str(tone_corpus), "--out", str(tmp_path / "m.pt"), "--preset", "tiny",
                "--threads", "-1", "--quiet")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "error: train.threads has an invalid value -1"
