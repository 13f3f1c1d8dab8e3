"""Masked retraining keeps pruned weights at exactly zero; the iterative schedule writes a
loadable pruned checkpoint, resumes after a kill to the same weights, and refuses mismatches."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

import ese.stages.prune as schedule
from ese.compress.prune import BalancedPruner
from ese.stages.prune import prune_checkpoint, step_densities
from ese.config import PruneConfig
from ese.errors import CheckpointError, ConfigError
from ese.model.checkpoint import load_checkpoint, write_checked
from ese.model.train import train_model
from ese.partition import matrix_partition

from prune_toys import toy_config, toy_sets, train_dense


@pytest.fixture(scope="module")
def dense(tmp_path_factory):
    cfg, sets = toy_config(), toy_sets()
    path = train_dense(cfg, sets, tmp_path_factory.mktemp("dense") / "dense.pt")
    return cfg, sets, path


def _weights_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_masks_hold_weights_at_exactly_zero_through_retraining(dense, tmp_path: Path) -> None:
    cfg, sets, path = dense
    model, _ = load_checkpoint(path)
    masks = BalancedPruner(0.3, 4).compute_masks(model)
    cfg2 = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=2, lr=3e-3))
    res = train_model(cfg2, sets["train"], sets["dev"], tmp_path / "r.pt", progress=False,
                      init_weights=model.state_dict(), masks=masks)
    params = dict(res.model.named_parameters())
    for name, mask in masks.items():
        assert torch.all(params[name][~mask] == 0), name
        assert not torch.equal(params[name][mask], dict(model.named_parameters())[name][mask])
    stored = torch.load(tmp_path / "r.pt", weights_only=True)
    assert all(torch.equal(stored["train_state"]["masks"][k], masks[k]) for k in masks)
    assert all(torch.all(stored["train_state"]["last_model"][k][~m] == 0) for k, m in masks.items())
    # resuming keeps the stored masks; different masks are refused
    more = dataclasses.replace(cfg2, train=dataclasses.replace(cfg2.train, epochs=3))
    again = train_model(more, sets["train"], sets["dev"], tmp_path / "r.pt", progress=False,
                        resume=True)
    assert all(torch.all(dict(again.model.named_parameters())[k][~m] == 0) for k, m in masks.items())
    other = {k: ~m for k, m in masks.items()}
    with pytest.raises(CheckpointError, match=r"it was trained with other pruning masks"):
        train_model(more, sets["train"], sets["dev"], tmp_path / "r.pt", progress=False,
                    resume=True, masks=other)
    with pytest.raises(CheckpointError, match=r"mask 'layers.0.w_q' of shape \(2,\) matches no "
                                              r"parameter"):
        train_model(cfg2, sets["train"], sets["dev"], tmp_path / "x.pt", progress=False,
                    masks={"layers.0.w_q": torch.ones(2, dtype=torch.bool)})


def test_step_densities() -> None:
    assert step_densities(PruneConfig(density=0.11, steps=(0.2, 0.5, 0.3, 0.05, 0.11))) == \
        [0.5, 0.3, 0.2, 0.11]
    assert step_densities(PruneConfig(density=1.0, steps=())) == [1.0]


def test_prune_checkpoint_end_to_end(dense, tmp_path: Path) -> None:
    cfg, sets, path = dense
    out = tmp_path / "pruned.pt"
    report = prune_checkpoint(path, cfg, sets, out, progress=False)
    assert report["density"] == pytest.approx(0.3, abs=0.01)
    assert [s["target"] for s in report["steps"]] == [0.6, 0.3]
    assert report["balance"] == "pes:4" and report["n_pes"] == 4
    for name, m in report["matrices"].items():
        assert m["nnz_per_pe"]["max"] - m["nnz_per_pe"]["min"] <= 1, name
    assert report["imbalance_max_over_mean"] < 1.02
    for key in ("per_dev", "per_test", "per_dense_dev", "per_dense_test"):
        assert 0 <= report[key] <= 100
    assert report["per_dev"] < report["per_dense_dev"] + 15  # the toy task survives 30 %
    model, meta = load_checkpoint(out, expect=cfg.model)
    assert set(meta["masks"]) == {"layers.0.w_x", "layers.0.w_r", "layers.0.w_ym"}
    params = dict(model.named_parameters())
    for name, mask in meta["masks"].items():
        assert mask.dtype == torch.bool
        assert torch.all(params[name][~mask] == 0)
        part = matrix_partition(name, mask.shape[0], 4)
        assert report["matrices"][name]["nnz"] == int(mask.sum())
        assert part.count_per_pe(mask.numpy().sum(axis=1)).max() == \
            report["matrices"][name]["nnz_per_pe"]["max"]
    assert meta["prune"]["density"] == report["density"]
    assert not (tmp_path / "pruned.pt.work").exists()


def test_unbalanced_reports_imbalance_at_report_pes(dense, tmp_path: Path) -> None:
    cfg, sets, path = dense
    cfg = dataclasses.replace(cfg, prune=dataclasses.replace(
        cfg.prune, balance="none", report_pes=4, retrain_epochs=0, steps=()))
    report = prune_checkpoint(path, cfg, sets, tmp_path / "u.pt", progress=False)
    assert report["n_pes"] == 4 and report["balance"] == "none"
    assert report["imbalance_max_over_mean"] >= 1.0
    assert report["steps"][0]["per_dev"] == report["per_dev"]


def test_killed_run_resumes_to_the_same_weights(dense, tmp_path: Path, monkeypatch) -> None:
    cfg, sets, path = dense
    straight = prune_checkpoint(path, cfg, sets, tmp_path / "a.pt", progress=False)

    real = schedule.train_model
    calls = []

    def dies_in_step_two(*args, **kwargs):
        calls.append(args[3])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(schedule, "train_model", dies_in_step_two)
    with pytest.raises(KeyboardInterrupt):
        prune_checkpoint(path, cfg, sets, tmp_path / "b.pt", progress=False)
    assert not (tmp_path / "b.pt").exists()
    assert (tmp_path / "b.pt.work" / "state.pt").exists()
    monkeypatch.setattr(schedule, "train_model", real)
    resumed = prune_checkpoint(path, cfg, sets, tmp_path / "b.pt", progress=False, resume=True)
    a, _ = load_checkpoint(tmp_path / "a.pt")
    b, _ = load_checkpoint(tmp_path / "b.pt")
    assert _weights_equal(a, b)
    assert resumed["steps"] == straight["steps"]

    # a finished output of the same recipe is returned without any work
    monkeypatch.setattr(schedule, "train_model", lambda *a, **k: pytest.fail("retrained"))
    again = prune_checkpoint(path, cfg, sets, tmp_path / "b.pt", progress=False, resume=True)
    assert again["per_dev"] == resumed["per_dev"]


def test_state_of_other_settings_is_refused(dense, tmp_path: Path, monkeypatch) -> None:
    cfg, sets, path = dense
    monkeypatch.setattr(schedule, "train_model", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        prune_checkpoint(path, cfg, sets, tmp_path / "c.pt", progress=False)
    other = dataclasses.replace(cfg, prune=dataclasses.replace(cfg.prune, density=0.2))
    with pytest.raises(CheckpointError, match=r"was made from another checkpoint or with other "
                                              r"settings; run without --resume to start over"):
        prune_checkpoint(path, other, sets, tmp_path / "c.pt", progress=False, resume=True)


def test_checkpoint_of_another_shape_and_bad_settings(dense, tmp_path: Path) -> None:
    cfg, sets, path = dense
    wrong = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, hidden=32))
    with pytest.raises(CheckpointError, match=r"holds a different model: hidden=24 \(expected 32\)"):
        prune_checkpoint(path, wrong, sets, tmp_path / "w.pt", progress=False)
    for field, value, message in [
        ("density", 0.0, r"prune.density must be in \(0, 1\] \(the fraction of weights kept\), not 0.0"),
        ("density", 1.5, r"prune.density must be in \(0, 1\] .*not 1.5"),
        ("steps", (0.5, 2.0), r"prune.steps entry must be in \(0, 1\] .*not 2.0"),
        ("balance", "pes:x", r"balance must be 'none' or 'pes:N' with N >= 1 PEs, not 'pes:x'"),
        ("per_matrix", "greedy", r"prune.per_matrix must be 'uniform' or 'sensitivity', not 'greedy'"),
        ("retrain_epochs", -1, r"prune.retrain_epochs must be >= 0, not -1"),
    ]:
        bad = dataclasses.replace(cfg, prune=dataclasses.replace(cfg.prune, **{field: value}))
        with pytest.raises(ConfigError, match=message):
            prune_checkpoint(path, bad, sets, tmp_path / "w.pt", progress=False)
    with pytest.raises(ConfigError, match=r"must not overwrite its source"):
        prune_checkpoint(path, cfg, sets, path, progress=False)
    assert not (tmp_path / "w.pt").exists()


def test_nan_checkpoint_is_refused(dense, tmp_path: Path) -> None:
    cfg, sets, path = dense
    state = torch.load(path, weights_only=True)
    state["model"]["layers.0.w_r"][0, 0] = float("nan")
    write_checked(tmp_path / "nan.pt", state)  # as a diverged run writes it: checksum consistent
    with pytest.raises(CheckpointError, match=r"non-finite \(NaN/inf\) weights in layers.0.w_r"):
        prune_checkpoint(tmp_path / "nan.pt", cfg, sets, tmp_path / "n.pt", progress=False)
