"""bf16 autocast training (``train.precision = "bf16"``): it learns as fp32 does, the weights and
the optimizer stay fp32, and an unknown precision is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ese.config import Config, ModelConfig, TrainConfig
from ese.errors import ConfigError
from ese.model.decode import evaluate
from ese.model.train import train_model

from toy_data import TOY_DIM, toy_featureset


def _config(precision: str) -> Config:
    return Config(model=ModelConfig(input_dim=TOY_DIM, hidden=24, proj=12, layers=1),
                  train=TrainConfig(epochs=6, batch_size=8, chunk_frames=25, lr=1e-2,
                                    output_delay=2, patience=3, threads=1, seed=7,
                                    precision=precision))


def test_bf16_training_learns_as_well_as_fp32(tmp_path: Path) -> None:
    train, dev = toy_featureset("train", 40, seed=1), toy_featureset("dev", 12, seed=2)
    results = {p: train_model(_config(p), train, dev, tmp_path / f"{p}.pt", progress=False)
               for p in ("fp32", "bf16")}
    bf16 = results["bf16"]
    assert all(p.dtype == torch.float32 for p in bf16.model.parameters())
    assert bf16.history[-1]["train_loss"] < 0.5 * bf16.history[0]["train_loss"]
    acc = {p: evaluate(r.model, dev, 2)["frame_acc"] for p, r in results.items()}
    assert acc["bf16"] > 90.0 and abs(acc["bf16"] - acc["fp32"]) < 5.0
    # not the same numbers: the forward really ran in bf16
    assert not torch.equal(bf16.model.layers[0].w_r, results["fp32"].model.layers[0].w_r)


def test_unknown_precision_is_refused(tmp_path: Path) -> None:
    train, dev = toy_featureset("train", 4, seed=1), toy_featureset("dev", 2, seed=2)
    with pytest.raises(ConfigError, match="train.precision"):
        train_model(_config("fp8"), train, dev, tmp_path / "x.pt", progress=False)
