"""Training's thread policy on a busy machine: OpenMP threads sleep at barriers unless the user
chose otherwise, and ``--threads`` reaches the training configuration."""

import os
import subprocess
import sys

import pytest

from ese.model.checkpoint import load_checkpoint


def _python(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    return subprocess.run([sys.executable, "-c", code], env={**clean, **env}, check=True,
                          capture_output=True, text=True, timeout=120).stdout.strip()


SHOW = "import os, ese; print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT'))"


def test_importing_ese_makes_openmp_threads_sleep_at_barriers():
    assert _python(SHOW) == "PASSIVE None"


@pytest.mark.parametrize("env,expected", [({"OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE None"),
                                          ({"GOMP_SPINCOUNT": "10000"}, "None 10000")])
def test_the_users_own_openmp_setting_wins(env, expected):
    assert _python(SHOW, **env) == expected


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
