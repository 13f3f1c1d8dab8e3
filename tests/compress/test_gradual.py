"""Gradual pruning (cubic density ramp inside one training run) and distillation from the dense
model: the ramp's densities, balanced masks at every update, selection only at the target,
bit-identical resume after a kill, and the distillation loss itself."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import ese.model.train as train_mod
from ese.compress.gradual import GradualPruning, cubic_density
from ese.compress.prune import BalancedPruner
from ese.stages.prune import prune_checkpoint
from ese.errors import ConfigError
from ese.model.checkpoint import load_checkpoint
from ese.model.train import Distillation, frame_loss
from ese.partition import matrix_partition

from prune_toys import toy_config, toy_sets, train_dense


@pytest.fixture(scope="module")
def dense(tmp_path_factory):
    cfg, sets = toy_config(), toy_sets()
    path = train_dense(cfg, sets, tmp_path_factory.mktemp("dense") / "dense.pt")
    return cfg, sets, path


def _gradual(cfg, **changes):
    pcfg = dict(recipe="gradual", ramp_epochs=2, finetune_epochs=2, updates_per_epoch=3)
    pcfg.update(changes)
    return dataclasses.replace(cfg, prune=dataclasses.replace(cfg.prune, **pcfg))


def test_cubic_ramp_falls_from_one_to_the_target_fast_then_slowly() -> None:
    assert cubic_density(0.0, 0.1) == pytest.approx(1.0)
    assert cubic_density(1.0, 0.1) == pytest.approx(0.1)
    assert cubic_density(2.0, 0.1) == pytest.approx(0.1)  # clipped after the ramp
    steps = [cubic_density(p / 10, 0.1) for p in range(11)]
    drops = [a - b for a, b in zip(steps, steps[1:])]
    assert all(d > 0 for d in drops) and drops == sorted(drops, reverse=True)


def test_ramp_updates_at_fixed_batches_and_reaches_the_target_in_its_last_epoch() -> None:
    ramp = GradualPruning(BalancedPruner(0.2, 4), 0.2, ramp_epochs=3, updates_per_epoch=4)
    n = 10  # batches per epoch -> an update every 3 batches
    due = [(e, b) for e in range(1, 5) for b in range(n) if ramp.density_at(e, b, n) is not None]
    assert due == [(e, b) for e in (1, 2, 3) for b in (0, 3, 6, 9)]
    densities = [ramp.density_at(e, b, n) for e, b in due]
    assert densities == sorted(densities, reverse=True) and densities[0] < 1.0
    assert densities[-1] == pytest.approx(0.2)
    assert [ramp.at_target(e) for e in (1, 2, 3, 4)] == [False, False, True, True]
    with pytest.raises(ConfigError, match="ramp_epochs"):
        GradualPruning(BalancedPruner(0.2, 4), 0.2, ramp_epochs=0)


def test_distillation_loss_is_cross_entropy_at_weight_zero_and_kl_at_weight_one() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 6, requires_grad=True)
    teacher = torch.randn(2, 5, 6)
    y = torch.tensor([[0, 1, 2, -1, 3], [4, 5, -1, -1, 0]])
    ce, n = frame_loss(logits, y)
    assert n == 7
    assert torch.allclose(ce, F.cross_entropy(logits.reshape(-1, 6), y.reshape(-1),
                                              ignore_index=-1))
    model = torch.nn.Linear(1, 1)  # stands in for the teacher; only the cached logits are used
    zero, _ = frame_loss(logits, y, teacher, Distillation(model, weight=0.0))
    assert torch.allclose(zero, ce)
    kl, _ = frame_loss(logits, y, teacher, Distillation(model, weight=1.0, temperature=2.0))
    keep = y.reshape(-1) >= 0
    p = F.softmax(teacher.reshape(-1, 6)[keep] / 2, -1)
    q = F.log_softmax(logits.reshape(-1, 6)[keep] / 2, -1)
    expected = 4 * (p * (p.log() - q)).sum() / 7
    assert torch.allclose(kl, expected)
    same, _ = frame_loss(teacher, y, teacher, Distillation(model, weight=1.0))
    assert float(same) == pytest.approx(0.0, abs=1e-6)  # a student equal to its teacher loses 0


@pytest.mark.slow  # trains
def test_gradual_run_prunes_to_the_balanced_target_in_one_run(dense, tmp_path: Path,
                                                              monkeypatch) -> None:
    cfg, sets, path = dense
    cfg = _gradual(cfg, distill=0.5)
    seen: list[float] = []
    real_update = GradualPruning.update

    def spy(self, model, masks, epoch, batch, n_batches):
        new = real_update(self, model, masks, epoch, batch, n_batches)
        if new is not None:
            if masks is not None:  # never revives a pruned weight
                assert all(not torch.any(new[k] & ~masks[k]) for k in new)
            for name, m in new.items():  # every intermediate mask is PE-balanced
                counts = matrix_partition(name, m.shape[0], 4).count_per_pe(
                    m.sum(dim=1).numpy())
                assert counts.max() - counts.min() <= 1, name
            seen.append(sum(int(m.sum()) for m in new.values()) /
                        sum(m.numel() for m in new.values()))
        return new

    monkeypatch.setattr(GradualPruning, "update", spy)
    report = prune_checkpoint(path, cfg, sets, tmp_path / "g.pt", progress=False)
    assert len(seen) == 2 * 3 and seen == sorted(seen, reverse=True)
    assert report["method"] == "gradual" and report["density"] == pytest.approx(0.3, abs=0.01)
    assert report["imbalance_max_over_mean"] < 1.05
    assert report["compute"]["epochs"] >= 2
    assert report["compute"]["frames"] == report["compute"]["epochs"] * sets["train"].num_frames
    model, meta = load_checkpoint(tmp_path / "g.pt")
    params = dict(model.named_parameters())
    for name, mask in meta["masks"].items():
        assert torch.all(params[name][~mask] == 0)


@pytest.mark.slow  # trains
def test_killed_gradual_run_resumes_to_the_same_weights(dense, tmp_path: Path,
                                                        monkeypatch) -> None:
    cfg, sets, path = dense
    cfg = _gradual(cfg, distill=0.3)
    straight = prune_checkpoint(path, cfg, sets, tmp_path / "a.pt", progress=False)

    real_eval = train_mod.evaluate
    calls = []

    def dies_after_two_epochs(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_eval(*args, **kwargs)

    monkeypatch.setattr(train_mod, "evaluate", dies_after_two_epochs)
    with pytest.raises(KeyboardInterrupt):
        prune_checkpoint(path, cfg, sets, tmp_path / "b.pt", progress=False)
    monkeypatch.setattr(train_mod, "evaluate", real_eval)
    resumed = prune_checkpoint(path, cfg, sets, tmp_path / "b.pt", progress=False, resume=True)
    a, _ = load_checkpoint(tmp_path / "a.pt")
    b, _ = load_checkpoint(tmp_path / "b.pt")
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert resumed["steps"] == straight["steps"]


def test_bad_recipe_settings_are_refused(dense, tmp_path: Path) -> None:
    cfg, sets, path = dense
    with pytest.raises(ConfigError, match="prune.recipe"):
        prune_checkpoint(path, _gradual(cfg, recipe="magic"), sets, tmp_path / "x.pt",
                         progress=False)
    with pytest.raises(ConfigError, match="prune.distill"):
        prune_checkpoint(path, _gradual(cfg, distill=1.5), sets, tmp_path / "x.pt",
                         progress=False)
    with pytest.raises(ConfigError, match="prune.finetune_epochs"):
        prune_checkpoint(path, _gradual(cfg, finetune_epochs=0), sets, tmp_path / "x.pt",
                         progress=False)


@pytest.mark.slow  # trains
def test_gradual_from_scratch_trains_dense_first_then_ramps(dense, tmp_path: Path) -> None:
    cfg, sets, path = dense
    ramp = GradualPruning(BalancedPruner(0.3, 4), 0.3, ramp_epochs=2, updates_per_epoch=2,
                          dense_epochs=2)
    assert [ramp.density_at(e, 0, 4) is not None for e in (1, 2, 3, 4, 5)] == [
        False, False, True, True, False]
    assert [ramp.at_target(e) for e in (3, 4)] == [False, True]
    cfg = _gradual(cfg, init="scratch", dense_epochs=1, ramp_epochs=1, finetune_epochs=2)
    report = prune_checkpoint(path, cfg, sets, tmp_path / "s.pt", progress=False)
    assert report["density"] == pytest.approx(0.3, abs=0.01)
    assert report["compute"]["epochs"] >= 2
    history = report["compute_steps"][0]["history"]
    assert history[0]["lr"] == cfg.train.lr  # from scratch: the dense learning rate
    assert report["per_dev"] < 50.0  # it learned the toy task from a random start
    with pytest.raises(ConfigError, match="prune.init"):
        prune_checkpoint(path, _gradual(cfg, init="warm"), sets, tmp_path / "x.pt", progress=False)
