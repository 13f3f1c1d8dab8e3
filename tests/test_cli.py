import json
import subprocess
import sys

import pytest
import typer.main
from typer.testing import CliRunner

from ese.cli import app

runner = CliRunner()


def _all_command_paths(group, prefix=()):
    for name, cmd in group.commands.items():
        yield prefix + (name,)
        if hasattr(cmd, "commands"):
            yield from _all_command_paths(cmd, prefix + (name,))


COMMANDS = list(_all_command_paths(typer.main.get_command(app)))


def test_the_issue_commands_exist():
    assert {("run",), ("train",), ("eval",), ("transcribe",), ("data", "synth")} <= set(COMMANDS)


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_has_help(path):
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and len(result.output) > 200


def _ese(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "ese", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_user_errors_are_one_line_and_non_zero(tmp_path):
    result = _ese("data", "info", str(tmp_path / "missing"))
    assert result.returncode == 1
    assert "error:" in result.stderr and "is not a directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_override_is_a_clear_error(tmp_path, tone_corpus):
    result = _ese("data", "features", "--corpus", str(tone_corpus), "--set", "features.num_mel_bins=many")
    assert result.returncode == 1 and "FeatureConfig.num_mel_bins must be a number" in result.stderr


def test_data_info_json(tone_corpus, tmp_path):
    out = tmp_path / "info.json"
    result = _ese("data", "info", str(tone_corpus), "--json", str(out))
    assert result.returncode == 0, result.stderr
    info = json.loads(out.read_text())
    assert info["train"]["utterances"] == 24 and info["dev"]["speakers"] == 1


@pytest.mark.slow  # synthesizes speech
@pytest.mark.synth
def test_data_synth_command_writes_corpus_and_json(tmp_path):
    out = tmp_path / "summary.json"
    result = _ese("data", "synth", str(tmp_path / "corpus"), "--preset", "tiny", "--quiet", "--json", str(out))
    assert result.returncode == 0, result.stderr
    summary = json.loads(out.read_text())
    assert all(summary["utterances"][s] > 0 for s in ("train", "dev", "test"))
    assert (tmp_path / "corpus" / "splits.json").exists() and "train" in result.stdout
