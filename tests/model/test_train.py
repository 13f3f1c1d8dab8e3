"""Training: it learns, it is reproducible, resume is bit-exact, the schedule behaves.

The task is a tiny synthetic one: class prototypes plus noise, in segments of a few frames.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from ese.config import Config, ModelConfig, TrainConfig, from_dict
from ese.data.dataset import FeatureSet
from ese.data.phones import INDEX_48
from ese.errors import CheckpointError, ConfigError
from ese.model.checkpoint import load_checkpoint
from ese.model.decode import evaluate
from ese.model.train import PlateauSchedule, train_model

from toy_data import TOY_DIM, TOY_PHONES, params_differ  # noqa: E402


def toy_config(**train: object) -> Config:
    tcfg = dict(epochs=6, batch_size=8, chunk_frames=25, lr=1e-2, output_delay=2, patience=3,
                threads=1, seed=7)
    tcfg.update(train)
    return Config(model=ModelConfig(input_dim=TOY_DIM, hidden=24, proj=12, layers=1),
                  train=TrainConfig(**tcfg))




def test_tiny_model_learns_the_toy_task(toy_data, tmp_path: Path) -> None:
    train, dev = toy_data
    cfg = toy_config(epochs=8)
    res = train_model(cfg, train, dev, tmp_path / "m.pt", progress=False, extra={"note": "toy"})
    losses = [h["train_loss"] for h in res.history]
    assert losses[-1] < 0.5 * losses[0], losses
    chance = 100.0 / len(TOY_PHONES)
    assert res.history[res.best_epoch - 1]["dev_frame_acc"] > max(85.0, 4 * chance)
    assert set(res.history[0]) == {"epoch", "train_loss", "dev_loss", "dev_frame_acc", "dev_per",
                                   "lr", "seconds"}
    # the best epoch is the one with the lowest dev loss, and its weights are what we got back
    dev_losses = [h["dev_loss"] for h in res.history]
    assert res.best_epoch == 1 + dev_losses.index(min(dev_losses))
    scored = evaluate(res.model, dev, cfg.train.output_delay)
    assert scored["loss"] == pytest.approx(min(dev_losses), rel=1e-5)
    assert scored["per"] < 30.0

    loaded, meta = load_checkpoint(tmp_path / "m.pt", expect=cfg.model)
    assert params_differ(loaded, res.model) == []
    assert meta["config"] == cfg.to_dict()
    assert from_dict(Config, meta["config"]) == cfg  # the CLI rebuilds the config this way
    assert meta["extra"] == {"note": "toy"}
    assert meta["epoch"] == len(res.history) and meta["best_epoch"] == res.best_epoch


def test_resume_gives_exactly_the_uninterrupted_weights(toy_data, tmp_path: Path) -> None:
    train, dev = toy_data
    straight = train_model(toy_config(epochs=4), train, dev, tmp_path / "a.pt", progress=False)

    first = train_model(toy_config(epochs=2), train, dev, tmp_path / "b.pt", progress=False)
    assert len(first.history) == 2
    resumed = train_model(toy_config(epochs=4), train, dev, tmp_path / "b.pt", progress=False,
                          resume=True)
    assert params_differ(straight.model, resumed.model) == []
    drop = lambda h: {k: v for k, v in h.items() if k != "seconds"}  # noqa: E731
    assert [drop(h) for h in resumed.history] == [drop(h) for h in straight.history]
    assert resumed.best_epoch == straight.best_epoch
    a, _ = load_checkpoint(tmp_path / "a.pt")
    b, _ = load_checkpoint(tmp_path / "b.pt")
    assert params_differ(a, b) == []
    a_state = torch.load(tmp_path / "a.pt", weights_only=True)["train_state"]
    b_state = torch.load(tmp_path / "b.pt", weights_only=True)["train_state"]
    assert all(torch.equal(a_state["last_model"][k], b_state["last_model"][k])
               for k in a_state["last_model"])


def test_resume_refuses_a_different_model(toy_data, tmp_path: Path) -> None:
    train, dev = toy_data
    train_model(toy_config(epochs=1), train, dev, tmp_path / "m.pt", progress=False)
    cfg = toy_config(epochs=2)
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, hidden=20))
    with pytest.raises(CheckpointError, match=r"hidden=24 \(expected 20\)"):
        train_model(cfg, train, dev, tmp_path / "m.pt", progress=False, resume=True)


def test_sgd_and_config_errors(toy_data, tmp_path: Path) -> None:
    train, dev = toy_data
    res = train_model(toy_config(epochs=1, optimizer="sgd", lr=0.1), train, dev, tmp_path / "s.pt",
                      progress=False)
    assert len(res.history) == 1
    with pytest.raises(ConfigError, match=r"'adam' or 'sgd', not 'rmsprop'"):
        train_model(toy_config(optimizer="rmsprop"), train, dev, tmp_path / "x.pt", progress=False)
    with pytest.raises(ConfigError, match=r"train.chunk_frames has an invalid value 0"):
        train_model(toy_config(chunk_frames=0), train, dev, tmp_path / "x.pt", progress=False)
    assert not (tmp_path / "x.pt").exists()


def test_plateau_schedule_decays_stops_and_restores() -> None:
    sched = PlateauSchedule(TrainConfig(lr=1.0, lr_decay=0.5, min_lr=0.2, patience=3))
    losses = [3.0, 2.0, 2.5, 2.0, 1.0, 1.1, 1.2, 1.3]
    steps = [(sched.step(loss), sched.lr, sched.should_stop) for loss in losses]
    assert steps == [(True, 1.0, False), (True, 1.0, False), (False, 0.5, False),
                     (False, 0.25, False), (True, 0.25, False), (False, 0.2, False),
                     (False, 0.2, False), (False, 0.2, True)]
    clone = PlateauSchedule(TrainConfig())
    clone.load_state_dict(sched.state_dict())
    assert clone.state_dict() == sched.state_dict()


def test_early_stopping_keeps_the_best_epoch(toy_data, tmp_path: Path) -> None:
    train, dev = toy_data
    # a dev set whose labels contradict the training labels: the better the model fits train,
    # the worse its dev loss, so training must stop early and hand back an early epoch
    wrong = {INDEX_48[a]: INDEX_48[b] for a, b in zip(TOY_PHONES, TOY_PHONES[1:] + TOY_PHONES[:1])}
    bad_dev = FeatureSet("dev", [dataclasses.replace(u, labels=np.array([wrong[v] for v in u.labels]))
                                 for u in dev.utterances])
    cfg = toy_config(epochs=12, patience=2, lr_decay=0.5)
    res = train_model(cfg, train, bad_dev, tmp_path / "e.pt", progress=False)
    assert res.stopped_early
    assert len(res.history) == res.best_epoch + 2 < 12
    # the lr is halved after each epoch without improvement
    lrs = [h["lr"] for h in res.history[res.best_epoch - 1:]]
    assert lrs == [cfg.train.lr, cfg.train.lr, cfg.train.lr * 0.5]
    scored = evaluate(res.model, bad_dev, cfg.train.output_delay)
    assert scored["loss"] == pytest.approx(res.best_dev_loss, rel=1e-5)
    # resuming a run that already stopped changes nothing
    again = train_model(cfg, train, bad_dev, tmp_path / "e.pt", progress=False, resume=True)
    assert again.history == res.history and params_differ(again.model, res.model) == []
