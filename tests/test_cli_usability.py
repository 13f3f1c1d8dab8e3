"""Small things users expect (issue 12, items 10 and 11): --version, a visible warning when
--resume has nothing to resume, log lines without source locations, cache defaults in --help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ese import __version__
from ese.cli import app, err_console

runner = CliRunner()


def _ese(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ese", *args], capture_output=True, text=True, timeout=300)


def test_version():
    proc = _ese("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"ese {__version__}"


@pytest.mark.slow  # trains through the CLI
def test_resume_without_a_checkpoint_says_it_starts_from_scratch(tone_corpus, tmp_path):
    # train.epochs=0 stops before any training, right after the warning would have been given
    proc = _ese("train", "--corpus", str(tone_corpus), "--out", str(tmp_path / "m.pt"), "--resume", "--quiet",
                "--preset", "tiny", "--set", "train.epochs=0")
    lines = proc.stderr.strip().splitlines()
    assert lines[0] == (f"warning: --resume: there is no checkpoint {str(tmp_path / 'm.pt')!r} yet; "
                        "training from scratch")
    assert proc.returncode == 1 and lines[1:] == ["error: train.epochs has an invalid value 0"]


def test_log_lines_carry_no_source_location():
    with err_console.capture() as cap:
        err_console.log("stage 1")
    assert "stage 1" in cap.get() and ".py:" not in cap.get()


@pytest.mark.parametrize("command,default", [(["train"], "default: features/ next to --out"),
                                             (["quantize"], "default: features/ next to --out"),
                                             (["eval"], "default: none"), (["data", "features"], "default: none"),
                                             (["prune"], "default: features/ beside the checkpoint")])
def test_every_cache_option_states_its_default(command, default):
    res = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "400"}, terminal_width=400)
    assert res.exit_code == 0
    assert default in " ".join(res.output.split())


@pytest.mark.parametrize("bad", ["-1", "nan", "inf"])
def test_a_bad_switch_penalty_is_one_line(bad, tmp_path):
    shipped = Path(__file__).resolve().parents[1] / "models" / "paper" / "paper-b32-d11-w12a16.qnpz"
    proc = _ese("transcribe", str(shipped), str(tmp_path / "none.wav"), "--switch-penalty", bad)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [f"error: the switch penalty must be a finite number >= 0 (nats), "
                                                f"not {float(bad)!r}"]


@pytest.mark.parametrize("command", ["eval", "transcribe"])
def test_the_switch_penalty_help_states_the_decoders_default(command):
    from ese.model.phone_loop import SWITCH_PENALTY
    res = runner.invoke(app, [command, "--help"], env={"COLUMNS": "400"}, terminal_width=400)
    assert res.exit_code == 0 and f"Default: {SWITCH_PENALTY:g}, chosen on dev" in " ".join(res.output.split())
