"""ese tune (ese.stages.tune): trials, resume, the table, best.toml; the Ray backend's numbers."""

from __future__ import annotations

import json
import tomllib

import pytest

from ese.stages.tune import SearchSpace, run_search, trial_recipes
from ese.errors import ConfigError
from ese.model.checkpoint import checkpoint_config, load_checkpoint

from prune_toys import toy_config, toy_sets, train_dense

SPACE = SearchSpace(ramp_epochs=(1,), finetune_epochs=(1, 2), lr_range=(1e-3, 5e-3), distill=(0.0, 0.5),
                    temperatures=(2.0,))


@pytest.fixture(scope="module")
def dense(tmp_path_factory):
    cfg, sets = toy_config(), toy_sets()
    return cfg, sets, train_dense(cfg, sets, tmp_path_factory.mktemp("dense") / "dense.pt")


@pytest.fixture(scope="module")
def local_search(dense, tmp_path_factory):
    cfg, sets, path = dense
    out = tmp_path_factory.mktemp("tune-local")
    return out, run_search(path, cfg, sets, out, trial_recipes(SPACE, 2, seed=1))


def test_recipes_are_drawn_from_the_space_the_same_way_every_time() -> None:
    a, b = trial_recipes(SPACE, 6, seed=3), trial_recipes(SPACE, 6, seed=3)
    assert a == b and a != trial_recipes(SPACE, 6, seed=4)
    for r in a:
        assert r["recipe"] == "gradual" and r["ramp_epochs"] == 1 and r["finetune_epochs"] in (1, 2)
        assert 1e-3 <= r["retrain_lr"] <= 5e-3 and r["distill"] in (0.0, 0.5)
    with pytest.raises(ConfigError, match="--trials"):
        trial_recipes(SPACE, 0)
    with pytest.raises(ConfigError, match="--lr-range"):
        SearchSpace(lr_range=(1e-3, 1e-4)).check()


def test_local_search_writes_the_table_and_a_best_recipe_prune_accepts(dense, local_search) -> None:
    cfg, _, path = dense
    out, summary = local_search
    assert [t["status"] for t in summary["trials"]] == ["done", "done"]
    best = min(summary["trials"], key=lambda t: t["per_dev"])
    assert summary["best"] == best
    on_disk = json.loads((out / "trials.json").read_text())
    assert on_disk["trials"] == summary["trials"]
    for t in summary["trials"]:  # compute: the epochs the recipe allows, frames and seconds
        r = t["recipe"]
        assert 1 <= t["compute"]["epochs"] <= r["ramp_epochs"] + r["finetune_epochs"]
        assert t["compute"]["frames"] > 0 and t["compute"]["seconds"] > 0
        assert t["density"] == pytest.approx(cfg.prune.density, abs=0.01)
    assert "| trial |" in (out / "trials.md").read_text()
    from doc_keys import documented_keys, missing

    assert not [m for key in documented_keys()["ese tune"] for m in missing(on_disk, key)]
    toml = tomllib.loads((out / "best.toml").read_text())["prune"]
    assert {k: toml[k] for k in best["recipe"]} == best["recipe"]
    # ese prune --config best.toml: the checkpoint's config with the recipe on top
    tuned = checkpoint_config(load_checkpoint(path)[1], path=out / "best.toml").prune
    assert (tuned.ramp_epochs, tuned.retrain_lr, tuned.distill) == (
        best["recipe"]["ramp_epochs"], best["recipe"]["retrain_lr"], best["recipe"]["distill"])


def test_a_rerun_resumes_every_trial_instead_of_training_again(dense, local_search) -> None:
    cfg, sets, path = dense
    out, summary = local_search
    before = (out / "trials" / "trial-0" / "result.json").stat().st_mtime_ns
    again = run_search(path, cfg, sets, out, trial_recipes(SPACE, 2, seed=1))
    assert again["trials"] == summary["trials"]
    assert (out / "trials" / "trial-0" / "result.json").stat().st_mtime_ns == before


@pytest.mark.slow
def test_ray_tune_runs_the_same_trials(dense, local_search, tmp_path, ray_cluster) -> None:
    cfg, sets, path = dense
    _, local = local_search
    summary = run_search(path, cfg, sets, tmp_path, trial_recipes(SPACE, 2, seed=1), backend="ray")
    assert summary["scheduler"] == "asha"
    statuses = [t["status"] for t in summary["trials"]]
    assert "done" in statuses and set(statuses) <= {"done", "stopped"}
    for ray_trial, local_trial in zip(summary["trials"], local["trials"]):
        if ray_trial["status"] == "done":  # the same recipe, the same numbers
            assert ray_trial["recipe"] == local_trial["recipe"]
            assert ray_trial["per_dev"] == local_trial["per_dev"]
            assert ray_trial["per_test"] == local_trial["per_test"]
