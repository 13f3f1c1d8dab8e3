"""Sensitivity scan and the per-matrix density allocation rule."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from ese.compress.prune import BalancedPruner
from ese.stages.prune import prune_checkpoint
from ese.compress.sensitivity import allocate_densities, sensitivity_table
from ese.stages.sensitivity import write_sensitivity
from ese.errors import ConfigError
from ese.model.checkpoint import load_checkpoint

from prune_toys import toy_config, toy_sets, train_dense


@pytest.fixture(scope="module")
def dense(tmp_path_factory):
    cfg, sets = toy_config(), toy_sets()
    path = train_dense(cfg, sets, tmp_path_factory.mktemp("dense") / "dense.pt")
    return cfg, sets, path


def _table(curves: dict[str, list[float]], weights: dict[str, int], dense_per: float = 20.0):
    return {"densities": [1.0, 0.5, 0.2, 0.1], "dense_per": dense_per, "pruner": {},
            "matrices": {n: {"weights": weights[n], "per": p} for n, p in curves.items()}}


def test_scan_shape_and_sanity(dense, tmp_path: Path) -> None:
    cfg, sets, path = dense
    model, _ = load_checkpoint(path)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    table = sensitivity_table(model, sets["dev"], cfg.train.output_delay, BalancedPruner(n_pes=4),
                              [0.05, 1.0, 0.5, 0.2], progress=False)
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())  # untouched
    assert table["densities"] == [1.0, 0.5, 0.2, 0.05]
    assert list(table["matrices"]) == ["layers.0.w_x", "layers.0.w_r", "layers.0.w_ym"]
    for name, row in table["matrices"].items():
        assert len(row["per"]) == 4
        assert row["per"][0] == table["dense_per"]
    # the toy task is memoryless (w_r can even help by being pruned), but 5 % of the input or
    # projection matrix clearly hurts, more than 50 % does
    for name in ("layers.0.w_x", "layers.0.w_ym"):
        per = table["matrices"][name]["per"]
        assert per[-1] > table["dense_per"] + 5 and per[-1] > per[1], name
    table["allocation"] = {"target": 0.3, "densities": allocate_densities(table, 0.3)}
    paths = write_sensitivity(table, tmp_path / "sens")
    assert [p.name for p in paths] == ["sensitivity.json", "sensitivity.md", "sensitivity.png"]
    assert json.loads(paths[0].read_text())["densities"] == [1.0, 0.5, 0.2, 0.05]
    assert "| layers.0.w_x |" in paths[1].read_text()
    assert paths[2].stat().st_size > 1000


def test_allocation_gives_sensitive_matrices_more_and_meets_the_target() -> None:
    table = _table({"a": [20.0, 20.0, 20.5, 21.0],   # robust
                    "b": [20.0, 25.0, 40.0, 60.0],   # sensitive
                    "c": [20.0, 21.0, 22.0, 30.0]},
                   {"a": 1000, "b": 1000, "c": 2000})
    alloc = allocate_densities(table, 0.3)
    total = sum(alloc[n] * table["matrices"][n]["weights"] for n in alloc)
    assert total == pytest.approx(0.3 * 4000, rel=1e-6)
    assert alloc["b"] > alloc["c"] > alloc["a"]
    assert all(0.1 <= d <= 1.0 for d in alloc.values())


def test_allocation_noise_and_edges() -> None:
    # a non-monotone curve is read through its worst loss at higher density
    noisy = _table({"a": [20.0, 30.0, 19.0, 31.0], "b": [20.0, 30.0, 30.0, 31.0]},
                   {"a": 100, "b": 100})
    alloc = allocate_densities(noisy, 0.5)
    assert alloc["a"] == pytest.approx(alloc["b"])
    # a target below the scanned range: uniform
    assert allocate_densities(noisy, 0.05) == {"a": 0.05, "b": 0.05}
    # a target near 1 is met with every matrix capped at 1
    alloc = allocate_densities(noisy, 0.99)
    assert sum(alloc.values()) * 100 == pytest.approx(198, rel=1e-6)
    assert max(alloc.values()) <= 1.0
    with pytest.raises(ConfigError, match=r"target density must be in \(0, 1\] .*not 0"):
        allocate_densities(noisy, 0)


def test_prune_with_sensitivity_densities(dense, tmp_path: Path) -> None:
    cfg, sets, path = dense
    cfg = dataclasses.replace(cfg, prune=dataclasses.replace(
        cfg.prune, per_matrix="sensitivity", sensitivity_densities=(1.0, 0.5, 0.2, 0.1),
        steps=(), retrain_epochs=1))
    report = prune_checkpoint(path, cfg, sets, tmp_path / "s.pt", progress=False)
    assert report["density"] == pytest.approx(0.3, abs=0.01)
    assert report["per_matrix"] == "sensitivity"
    assert set(report["sensitivity"]["matrices"]) == set(report["matrices"])
    dens = [m["density"] for m in report["matrices"].values()]
    assert max(dens) - min(dens) > 0.01  # not uniform
