"""Checkpoints: self-describing round trip and every way a file can be wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ese.config import Config, ModelConfig
from ese.data.phones import PHONES_48
from ese.errors import CheckpointError
from ese.model.checkpoint import load_checkpoint, save_checkpoint, write_checked

CFG = ModelConfig(input_dim=6, hidden=8, proj=4, layers=2, num_classes=48)


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, torch.nn.Module]:
    from ese.model.lstmp import AcousticModel
    torch.manual_seed(0)
    model = AcousticModel(CFG)
    path = tmp_path / "model.pt"
    config = Config(model=CFG).to_dict()
    save_checkpoint(path, model, config=config, epoch=3, best_epoch=2,
                    history=[{"epoch": 1, "dev_loss": 1.5}],
                    extra={"cmvn_mean": np.arange(6, dtype=np.float32), "corpus": "toy"})
    return path, model


def test_round_trip_restores_weights_and_metadata(saved: tuple[Path, torch.nn.Module]) -> None:
    path, model = saved
    loaded, meta = load_checkpoint(path, expect=CFG)
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    assert meta["model_config"] == CFG
    assert meta["phones"] == list(PHONES_48)
    assert (meta["epoch"], meta["best_epoch"]) == (3, 2)
    assert meta["config"]["model"]["hidden"] == 8
    assert meta["history"] == [{"epoch": 1, "dev_loss": 1.5}]
    assert torch.equal(meta["extra"]["cmvn_mean"], torch.arange(6, dtype=torch.float32))
    assert not loaded.training
    # plain content only: the file loads without unpickling arbitrary objects
    assert torch.load(path, weights_only=True)["version"] == 1


def test_mismatched_config_names_the_fields(saved: tuple[Path, torch.nn.Module]) -> None:
    path, _ = saved
    other = ModelConfig(input_dim=6, hidden=16, proj=4, layers=1, num_classes=48)
    with pytest.raises(CheckpointError, match=r"hidden=8 \(expected 16\), layers=2 \(expected 1\)"):
        load_checkpoint(path, expect=other)


def test_non_finite_weights_are_refused(tmp_path: Path) -> None:
    from ese.model.lstmp import AcousticModel
    model = AcousticModel(CFG)
    with torch.no_grad():
        model.layers[1].w_ym[0, 0] = float("nan")
    path = tmp_path / "nan.pt"
    save_checkpoint(path, model)
    with pytest.raises(CheckpointError, match=r"non-finite \(NaN/inf\) weights in layers\.1\.w_ym"):
        load_checkpoint(path)


def test_truncated_file_is_refused(saved: tuple[Path, torch.nn.Module], tmp_path: Path) -> None:
    path, _ = saved
    cut = tmp_path / "cut.pt"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"unreadable or corrupt"):
        load_checkpoint(cut)


def test_missing_and_foreign_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match=r"is not an ese checkpoint"):
        load_checkpoint(foreign)


def test_version_mismatch_is_refused(saved: tuple[Path, torch.nn.Module]) -> None:
    path, _ = saved
    state = torch.load(path, weights_only=True)
    state["version"] = 99
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"format version 99; this ese reads version 1"):
        load_checkpoint(path)


def test_weights_that_do_not_fit_the_config_are_refused(saved: tuple[Path, torch.nn.Module]) -> None:
    path, _ = saved
    state = torch.load(path, weights_only=True)
    state["model_config"]["hidden"] = 9
    write_checked(path, state)  # a consistent file (its checksum updated) holding misfit weights
    with pytest.raises(CheckpointError, match=r"do not fit the model config"):
        load_checkpoint(path)


def test_save_is_atomic_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ese.model.lstmp import AcousticModel
    path = tmp_path / "model.pt"
    path.write_bytes(b"old")

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")
    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        save_checkpoint(path, AcousticModel(CFG))
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]
