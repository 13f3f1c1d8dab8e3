"""scripts/package_model.py: the shipped report keeps its keys and adds one row per seed, their
mean and spread, and the recipe that made the model."""

from __future__ import annotations

import pytest


def _prune(seed: int, dense: float, pruned: float) -> dict:
    return {"density": 0.11, "balance": "pes:32", "n_pes": 32, "per_dense_dev": dense - 10,
            "per_dense_test": dense, "per_dev": pruned - 10, "per_test": pruned,
            "imbalance_max_over_mean": 1.0, "steps": [], "matrices": {}, "method": "gradual",
            "compute": {"epochs": 10, "frames": 100, "seconds": 5.0},
            "recipe": {"prune": {"recipe": "gradual", "distill": 0.5, "ramp_epochs": 4},
                       "train": {"seed": seed, "precision": "bf16", "lr": 1e-3}}}


def _quant(dev: float, test: float) -> dict:
    return {"per_quantized": {"dev": dev, "test": test}, "weight_bits": 12, "act_bits": 16,
            "saturation": {}, "lut_error": {}, "model_bits": {}, "sweep": []}


def test_seed_rows_summary_and_recipe(pm) -> None:
    runs = [(_prune(0, 26.0, 26.5), _quant(16.4, 26.4)), (_prune(1, 26.0, 27.0), _quant(17.0, 27.1)),
            (_prune(2, 26.0, 26.0), _quant(16.1, 26.1))]
    report = pm.package(runs[0][0], None, runs[0][1])
    assert {"density", "per_dense", "per_pruned", "per_quantized",
            "imbalance_max_over_mean"} <= set(report)
    assert report["recipe"]["method"] == "gradual"
    assert report["recipe"]["prune"] == {"recipe": "gradual", "distill": 0.5, "ramp_epochs": 4}
    assert report["recipe"]["train"] == {"seed": 0, "precision": "bf16"}
    rows = [pm.seed_row(p, q) for p, q in runs]
    assert [r["seed"] for r in rows] == [0, 1, 2]
    assert rows[1]["per_quantized"] == {"dev": 17.0, "test": 27.1}
    assert rows[1]["loss"]["test"] == pytest.approx(1.1)
    summary = pm.summarize(rows)
    assert summary["n"] == 3
    assert summary["loss"]["test"]["mean"] == pytest.approx((0.4 + 1.1 + 0.1) / 3)
    assert summary["per_dense"]["test"]["std"] == 0.0
    assert summary["per_quantized"]["test"]["std"] == pytest.approx(0.5131601439, rel=1e-6)


def _sweep(per_at: dict[str, float]) -> dict:
    return {"per": {split: {"0": {"per": 99.0, "sub": 1, "del": 0, "ins": 9, "n_ref": 10},
                            "6": {"per": v, "sub": 1, "del": 1, "ins": 0, "n_ref": 10}}
                    for split, v in per_at.items()}}


def test_decoded_figures_replace_the_stage_ones_which_are_kept(pm) -> None:
    report = pm.package(_prune(0, 26.0, 26.5), None, _quant(16.4, 26.4))
    sweeps = {"dense": _sweep({"dev": 10.0, "test": 14.0, "proxy": 60.0}),
              "quantized": _sweep({"dev": 11.0, "test": 15.0, "proxy": 61.0})}
    out = pm.decoded(report, sweeps, 6.0)
    assert out["per_dense"] == {"dev": 10.0, "test": 14.0, "proxy": 60.0}
    assert out["per_quantized"]["proxy"] == 61.0
    assert out["per_pruned"] == {"dev": 16.5, "test": 26.5}  # no sweep given: the stage's figures stay
    assert out["per_at_stage"]["per_dense"] == {"dev": 16.0, "test": 26.0}
    assert out["edits"]["dense"]["test"] == {"sub": 1, "del": 1, "ins": 0, "n_ref": 10}
    assert "6" in out["decoder"]["per_dense/per_pruned/per_quantized"]
    with pytest.raises(SystemExit, match="penalty 5"):
        pm.decoded(pm.package(_prune(0, 26.0, 26.5), None, _quant(16.4, 26.4)), sweeps, 5.0)
