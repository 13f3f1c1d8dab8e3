"""Shared toy data for the pruning tests: class prototypes plus noise, a few frames per segment
(the task of tests/model/test_train.py), and a briefly trained dense checkpoint."""

from __future__ import annotations

from pathlib import Path


from ese.config import Config, ModelConfig, PruneConfig, TrainConfig
from ese.data.dataset import FeatureSet
from ese.model.train import train_model

from toy_data import TOY_DIM, TOY_PHONES, toy_featureset  # noqa: E402,F401


def toy_sets() -> dict[str, FeatureSet]:
    return {"train": toy_featureset("train", 40, seed=1), "dev": toy_featureset("dev", 12, seed=2),
            "test": toy_featureset("test", 12, seed=3)}


def toy_config(hidden: int = 24, proj: int = 12, layers: int = 1, **prune: object) -> Config:
    train = TrainConfig(epochs=6, batch_size=8, chunk_frames=25, lr=1e-2, output_delay=2,
                        patience=3, threads=1, seed=7)
    pcfg = dict(density=0.3, balance="pes:4", steps=(0.6,), retrain_epochs=1, retrain_lr=3e-3)
    pcfg.update(prune)
    return Config(model=ModelConfig(input_dim=TOY_DIM, hidden=hidden, proj=proj, layers=layers),
                  train=train, prune=PruneConfig(**pcfg))


def train_dense(cfg: Config, sets: dict[str, FeatureSet], path: Path) -> Path:
    train_model(cfg, sets["train"], sets["dev"], path, progress=False)
    return path
