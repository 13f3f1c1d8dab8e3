"""train.threads = 0: the count is chosen from the machine's load (mocked here), recorded in the
training state, reported, and a resumed run keeps it, to the bit."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import ese.threads as T
from ese.config import Config, ModelConfig, TrainConfig
from ese.model.train import train_model
from ese.threads import torch_threads

from toy_data import TOY_DIM, params_differ


def toy_config(epochs: int, threads: int) -> Config:
    return Config(model=ModelConfig(input_dim=TOY_DIM, hidden=24, proj=12, layers=1),
                  train=TrainConfig(epochs=epochs, batch_size=8, chunk_frames=25, lr=1e-2,
                                    output_delay=2, patience=3, threads=threads, seed=7))




def _load(monkeypatch, busy: float, cores: int = 2) -> None:
    monkeypatch.setattr(T, "usable_cores", lambda: cores)
    monkeypatch.setattr(T, "busy_cores", lambda interval=T.SAMPLE_S: (busy, "mocked"))


def _train(toy_data, path: Path, seen: list[int], **kw):
    train, dev = toy_data
    epochs, threads = kw.pop("epochs", 1), kw.pop("threads", 0)
    with torch_threads(2):  # the library's limit: 2, whatever OMP_NUM_THREADS says
        return train_model(toy_config(epochs=epochs, threads=threads), train, dev, path,
                           on_epoch=lambda row, sel: seen.append(torch.get_num_threads()), **kw)


def _recorded(path: Path) -> int:
    return torch.load(path, weights_only=True)["train_state"]["threads"]


@pytest.mark.parametrize("busy,want", [(0.0, 2), (1.0, 1)])
def test_the_count_follows_the_load_and_is_recorded(toy_data, tmp_path, monkeypatch, busy, want):
    _load(monkeypatch, busy)
    seen: list[int] = []
    res = _train(toy_data, tmp_path / "m.pt", seen, progress=False)
    assert seen == [want] and res.threads == want and _recorded(tmp_path / "m.pt") == want


def test_an_explicit_count_is_used_as_given(toy_data, tmp_path, monkeypatch):
    _load(monkeypatch, 2.0)
    seen: list[int] = []
    assert _train(toy_data, tmp_path / "m.pt", seen, threads=2, progress=False).threads == 2
    assert seen == [2] and _recorded(tmp_path / "m.pt") == 2


def test_resume_keeps_the_chosen_count_and_the_bits(toy_data, tmp_path, monkeypatch):
    _load(monkeypatch, 0.0)  # quiet: 2 threads
    straight = _train(toy_data, tmp_path / "a.pt", [], epochs=3, progress=False)
    first = _train(toy_data, tmp_path / "b.pt", [], epochs=1, progress=False)
    assert straight.threads == first.threads == 2
    _load(monkeypatch, 1.0)  # the machine got busy: a fresh run would take 1
    seen: list[int] = []
    resumed = _train(toy_data, tmp_path / "b.pt", seen, epochs=3, progress=False, resume=True)
    assert seen == [2, 2] and resumed.threads == 2
    assert params_differ(straight.model, resumed.model) == []


def test_the_choice_is_said_in_one_line(toy_data, tmp_path, monkeypatch, capsys):
    _load(monkeypatch, 1.0)
    _train(toy_data, tmp_path / "m.pt", [], progress=True)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("threads:")]
    assert lines == ["threads: 1 (automatic: 1.0 of 2 cores busy with other processes (mocked); "
                     "--threads N sets it)"]
    _train(toy_data, tmp_path / "q.pt", [], progress=False)  # --quiet: nothing
    assert "threads:" not in capsys.readouterr().err
