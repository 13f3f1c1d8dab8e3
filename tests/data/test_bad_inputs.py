"""Bad inputs a user can hand ese: one line naming the file and the problem, exit status 1, no
traceback (issue 12, items 1, 2, 9 and 10)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from corpus_factory import make_tone_corpus
from deploy_models import unit_normalisation

from ese.config import Config
from ese.data.timit import read_audio, split_records
from ese.errors import AudioError, CorpusError
from ese.model.checkpoint import save_checkpoint
from ese.model.lstmp import AcousticModel


def _ese(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ese", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def _one_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "Warning" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    cfg = Config.load(preset="tiny")
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ck") / "ck.pt"
    save_checkpoint(path, AcousticModel(cfg.model), config=cfg.to_dict(),
                    normalisation=unit_normalisation(cfg.features))
    return path


@pytest.mark.parametrize("engine", ["torch", "ese-cpu"])
@pytest.mark.slow  # a CLI subprocess per engine
def test_audio_shorter_than_one_window_is_refused_by_both_engines(tmp_path, checkpoint, engine):
    """Decided: refused, as the corpus reader refuses it (a 6 ms clip holds no phone to decode)."""
    wav = tmp_path / "short.wav"
    sf.write(wav, np.zeros(100, np.float32), 16000, subtype="PCM_16")
    line = _one_line(_ese("transcribe", str(checkpoint), str(wav), "--engine", engine))
    assert line == (f"error: {wav}: audio shorter than one analysis window (100 samples; at least 400 "
                    "needed, 25 ms at 16000 Hz)")


def test_a_dangling_wav_link_in_a_corpus_names_the_file(tmp_path):
    corpus = make_tone_corpus(tmp_path / "c", speakers=2, utts=2)
    spk = next((corpus / "TRAIN").glob("DR*/*"))
    link = spk / "SX900.WAV"
    link.symlink_to(tmp_path / "nowhere.wav")
    (spk / "SX900.PHN").write_text((spk / "SX100.PHN").read_text())
    line = _one_line(_ese("data", "features", "--corpus", str(corpus), "--cache-dir", str(tmp_path / "cache"),
                          "--quiet"))
    assert line == f"error: {link}: a dangling link; remove it or point it at the audio"


def test_a_speaker_missing_from_splits_json_is_not_dropped_silently(tmp_path):
    corpus = make_tone_corpus(tmp_path / "c", speakers=2, utts=1)
    splits = json.loads((corpus / "splits.json").read_text())
    dropped = splits["train"].pop()
    (corpus / "splits.json").write_text(json.dumps(splits))
    with pytest.raises(CorpusError, match=rf"splits\.json: speaker\(s\) {dropped} under TRAIN are in no split; "
                                          r"list them under train or remove their folders"):
        split_records(corpus, "train")
    assert split_records(corpus, "dev")  # the TEST side is complete and still loads


def test_missing_audio_and_directories_say_so(tmp_path):
    with pytest.raises(AudioError, match=r"nope\.wav: no such file$"):
        read_audio(tmp_path / "nope.wav", 16000)
    with pytest.raises(AudioError, match=r": is a directory, not an audio file$"):
        read_audio(tmp_path, 16000)


@pytest.mark.slow  # a CLI subprocess
def test_transcribe_names_a_missing_file(tmp_path, checkpoint):
    line = _one_line(_ese("transcribe", str(checkpoint), str(tmp_path / "nope.wav")))
    assert line == f"error: {tmp_path / 'nope.wav'}: no such file"
