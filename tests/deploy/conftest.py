from pathlib import Path

import pytest
from deploy_models import make_models, write_wav


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory, tone_corpus) -> dict[str, Path]:
    """A briefly trained tiny checkpoint, its .qnpz and its .ese, all self-contained."""
    return make_models(tmp_path_factory.mktemp("tiny_models"), tone_corpus)


@pytest.fixture(scope="session")
def test_wav(tmp_path_factory, tone_corpus) -> Path:
    """A RIFF WAV of the first TEST utterance of the tone corpus."""
    return write_wav(tmp_path_factory.mktemp("wav") / "utt.wav", tone_corpus)
