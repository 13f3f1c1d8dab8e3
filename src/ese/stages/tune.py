"""Recipe search for pruning (``ese tune``): trials of the gradual recipe, ranked on dev PER.

A trial is one ``prune_checkpoint`` run of the gradual recipe (cubic ramp, then fine-tuning at
the target density, optionally with distillation) with its own ramp epochs, fine-tuning epochs,
learning rate and distillation weight and temperature, drawn from a :class:`SearchSpace` by a
seeded generator, so both backends run the same recipes:

- ``local``: the trials one after the other, each to its end (no Ray needed);
- ``ray``: Ray Tune runs them in parallel (one CPU each) under ASHA, which stops a trial whose
  dev PER at the target density is in the worse half of those that reached the same number of
  epochs (the same compute). Only epochs at the target density are reported: during the ramp
  the model is denser than the target and its PER says nothing about the recipe.

Every trial lives in ``OUT/trials/trial-K/``: its pruning state (resumable: re-running the
search continues each trial from its last epoch, and a finished trial returns at once),
``progress.json`` (every epoch's row) and, once finished, ``result.json``. The table of all
trials is built from those files, so it is the same whichever backend ran them. The best
finished trial (lowest dev PER of its final model) is written as a ``[prune]`` TOML that
``ese prune --config`` takes.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ese.atomic import atomic_open, write_json
from ese.config import Config
from ese.data.dataset import FeatureSet
from ese.errors import ConfigError

RECIPE_KEYS = ("ramp_epochs", "finetune_epochs", "retrain_lr", "distill", "distill_temperature")


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """What the search draws from: lists are chosen from uniformly, the learning rate
    log-uniformly in ``lr_range``."""

    ramp_epochs: tuple[int, ...] = (1, 2, 3)
    finetune_epochs: tuple[int, ...] = (1, 2, 4)
    lr_range: tuple[float, float] = (3e-4, 3e-3)
    distill: tuple[float, ...] = (0.0, 0.3, 0.5, 0.7)
    temperatures: tuple[float, ...] = (1.0, 2.0, 4.0)

    def check(self) -> "SearchSpace":
        for name in ("ramp_epochs", "finetune_epochs"):
            values = getattr(self, name)
            if not values or min(values) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must list epochs >= 1, not {values!r}")
        lo, hi = self.lr_range
        if not 0 < lo <= hi:
            raise ConfigError(f"--lr-range must be LOW,HIGH with 0 < LOW <= HIGH, not {lo:g},{hi:g}")
        if not self.distill or not all(0.0 <= d <= 1.0 for d in self.distill):
            raise ConfigError(f"--distill must list weights in [0, 1], not {self.distill!r}")
        if not self.temperatures or not all(t > 0 for t in self.temperatures):
            raise ConfigError(f"--temperatures must list values > 0, not {self.temperatures!r}")
        return self

    @property
    def max_epochs(self) -> int:
        return max(self.ramp_epochs) + max(self.finetune_epochs)


def trial_recipes(space: SearchSpace, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` recipes drawn from ``space`` (the same for the same seed, on every backend)."""
    if n < 1:
        raise ConfigError(f"--trials must be >= 1, not {n}")
    rng = np.random.default_rng(seed)
    lo, hi = space.lr_range
    out = []
    for _ in range(n):
        distill = float(rng.choice(space.distill))
        temp = float(rng.choice(space.temperatures))
        out.append({"recipe": "gradual",
                    "ramp_epochs": int(rng.choice(space.ramp_epochs)),
                    "finetune_epochs": int(rng.choice(space.finetune_epochs)),
                    "retrain_lr": float(f"{math.exp(rng.uniform(math.log(lo), math.log(hi))):.3g}"),
                    "distill": distill,
                    "distill_temperature": temp if distill > 0 else 1.0})
    return out


def trial_config(cfg: Config, recipe: dict[str, Any]) -> Config:
    """``cfg`` with the trial's recipe in its prune section."""
    return dataclasses.replace(cfg, prune=dataclasses.replace(cfg.prune, **recipe))


def trial_dir(out: str | Path, k: int) -> Path:
    return Path(out) / "trials" / f"trial-{k}"


def run_trial(shared: dict[str, Any], k: int,
              report: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run (or resume, or replay when finished) trial ``k``; its result row.

    ``shared``: ``checkpoint``, ``config`` (a Config), ``sets`` (train, dev, test), ``out``,
    ``recipes``. ``report`` gets ``{"dev_per", "epochs"}`` after every epoch at the target
    density (Ray Tune's ``tune.report``; ASHA may end the trial there).
    """
    from ese.stages.prune import prune_checkpoint

    recipe = shared["recipes"][k]
    where = trial_dir(shared["out"], k)
    where.mkdir(parents=True, exist_ok=True)
    progress_path = where / "progress.json"
    rows: list[dict[str, Any]] = (json.loads(progress_path.read_text(encoding="utf-8"))["rows"]
                                  if progress_path.exists() else [])
    done_path = where / "result.json"
    if done_path.exists():
        result = json.loads(done_path.read_text(encoding="utf-8"))
        if result.get("recipe") == recipe:
            for row in rows:  # a finished trial tells the scheduler its story again, at once
                if row["selectable"] and report is not None:
                    report({"dev_per": row["dev_per"], "epochs": row["epochs"]})
            return result

    def on_epoch(row: dict[str, Any], selectable: bool) -> None:
        kept = [r for r in rows if r["epoch"] < row["epoch"]]  # a resumed epoch replaces its row
        rows[:] = kept + [{**row, "selectable": selectable, "epochs": len(kept) + 1}]
        write_json(progress_path, {"recipe": recipe, "rows": rows})
        if selectable and report is not None:
            report({"dev_per": row["dev_per"], "epochs": len(rows)})

    cfg = trial_config(shared["config"], recipe)
    rep = prune_checkpoint(shared["checkpoint"], cfg, shared["sets"], where / "pruned.pt", resume=True,
                           progress=False, on_epoch=on_epoch)
    result = {"trial": k, "recipe": recipe, "status": "done", "per_dev": rep["per_dev"],
              "per_test": rep["per_test"], "density": rep["density"],
              "compute": {key: rep["compute"][key] for key in ("epochs", "frames", "seconds")}}
    write_json(done_path, result)
    return result


def _tune_trainable(config: dict[str, Any], shared: dict[str, Any]) -> None:
    """Ray Tune's view of a trial (module level: Ray ships it by reference)."""
    from ray import tune

    run_trial(shared, int(config["trial"]), report=tune.report)


def run_search(checkpoint: str | Path, cfg: Config, sets: dict[str, FeatureSet], out: str | Path,
               recipes: Sequence[dict[str, Any]], *, backend: str = "local",
               ray_address: str | None = None, grace_epochs: int = 1,
               say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every trial on ``backend``; write ``trials.json``, ``trials.md`` and ``best.toml``
    into ``out`` and return the summary (see docs/cli.md, ``ese tune``)."""
    out = Path(out)
    recipes = list(recipes)
    # absolute: Ray Tune runs each trial in a directory of its own
    shared = {"checkpoint": str(Path(checkpoint).resolve()), "config": cfg, "sets": sets,
              "out": str(out.resolve()), "recipes": recipes}
    errors: dict[int, str] = {}
    max_epochs = max(r["ramp_epochs"] + r["finetune_epochs"] for r in recipes)
    if backend == "ray":
        errors = _search_ray(shared, len(recipes), max_epochs, grace_epochs, ray_address, out)
    else:
        for k in range(len(recipes)):
            if say:
                say(f"trial {k} ({k + 1} of {len(recipes)}): {_recipe_text(recipes[k])}")
            run_trial(shared, k)
    trials = [_trial_row(out, k, recipes[k], errors.get(k)) for k in range(len(recipes))]
    done = [t for t in trials if t["status"] == "done"]
    best = min(done, key=lambda t: (t["per_dev"], t["trial"])) if done else None
    summary = {"checkpoint": str(checkpoint), "backend": backend, "scheduler": "asha" if backend == "ray" else "none",
               "max_epochs": max_epochs, "grace_epochs": grace_epochs,
               "density": cfg.prune.density, "balance": cfg.prune.balance,
               "trials": trials, "best": best,
               "best_config": str(out / "best.toml") if best else None}
    write_json(out / "trials.json", summary)
    with atomic_open(out / "trials.md", "w", encoding="utf-8") as fh:
        fh.write(trials_markdown(summary))
    if best is not None:
        with atomic_open(out / "best.toml", "w", encoding="utf-8") as fh:
            fh.write(best_toml(best["recipe"], cfg, best))
    return summary


def _search_ray(shared: dict[str, Any], n: int, max_epochs: int, grace: int, address: str | None,
                out: Path) -> dict[int, str]:
    from ese.parallel import ray_session

    with ray_session(address):
        from ray import tune
        from ray.tune.schedulers import ASHAScheduler

        # max_t one past the longest trial: ASHA ends a trial that reaches max_t at once, which
        # would cut the last epoch's trial before its final scoring
        scheduler = ASHAScheduler(time_attr="epochs", metric="dev_per", mode="min", max_t=max_epochs + 1,
                                  grace_period=max(1, grace), reduction_factor=2)
        trainable = tune.with_resources(tune.with_parameters(_tune_trainable, shared=shared), {"cpu": 1})
        tuner = tune.Tuner(trainable, param_space={"trial": tune.grid_search(list(range(n)))},
                           tune_config=tune.TuneConfig(scheduler=scheduler),
                           run_config=tune.RunConfig(storage_path=str((out / "ray").resolve()), name="tune",
                                                     verbose=0))
        grid = tuner.fit()
        errors = {}
        for result in grid:
            if result.error is not None:
                text = str(result.error).strip().splitlines()
                errors[int(result.config["trial"])] = text[-1] if text else type(result.error).__name__
        return errors


def _trial_row(out: Path, k: int, recipe: dict[str, Any], error: str | None) -> dict[str, Any]:
    where = trial_dir(out, k)
    if (where / "result.json").exists():
        row = json.loads((where / "result.json").read_text(encoding="utf-8"))
        if row.get("recipe") == recipe:
            return row
    rows = (json.loads((where / "progress.json").read_text(encoding="utf-8"))["rows"]
            if (where / "progress.json").exists() else [])
    at_target = [r for r in rows if r["selectable"]]
    status = "failed" if error else "stopped" if rows else "not run"  # not run: the search was interrupted
    return {"trial": k, "recipe": recipe, "status": status,
            "error": error, "per_dev": at_target[-1]["dev_per"] if at_target else None, "per_test": None,
            "density": None,
            "compute": {"epochs": len(rows), "frames": None, "seconds": float(sum(r["seconds"] for r in rows))}}


def _recipe_text(r: dict[str, Any]) -> str:
    return (f"ramp {r['ramp_epochs']}, finetune {r['finetune_epochs']}, lr {r['retrain_lr']:g}, "
            f"distill {r['distill']:g} (T {r['distill_temperature']:g})")


def trials_markdown(summary: dict[str, Any]) -> str:
    from ese.report.tables import markdown_table

    best = summary["best"]
    header = ["trial", "ramp", "finetune", "lr", "distill", "T", "status", "dev PER %", "test PER %",
              "epochs", "train s"]
    rows = []
    for t in summary["trials"]:
        r = t["recipe"]
        rows.append([t["trial"], r["ramp_epochs"], r["finetune_epochs"], f"{r['retrain_lr']:g}", r["distill"],
                     r["distill_temperature"], t["status"] + (" *" if best is not None and t["trial"] == best["trial"] else ""),
                     "" if t["per_dev"] is None else t["per_dev"], "" if t["per_test"] is None else t["per_test"],
                     t["compute"]["epochs"], t["compute"]["seconds"]])
    lines = [f"# ese tune: {len(rows)} trials of the gradual recipe, density {summary['density']:g} "
             f"({summary['balance']}), backend {summary['backend']} (scheduler {summary['scheduler']})", "",
             markdown_table(header, rows), "",
             "dev PER: the trial's final model (finished trials) or its last epoch at the target density "
             "(trials ASHA stopped); * = best, written to best.toml"]
    return "\n".join(lines) + "\n"


def best_toml(recipe: dict[str, Any], cfg: Config, best: dict[str, Any]) -> str:
    """The recipe as a ``[prune]`` table for ``ese prune --config``."""
    def value(v: Any) -> str:
        return json.dumps(v) if isinstance(v, str) else repr(v)

    lines = [f"# ese tune: best of the trials (trial {best['trial']}, dev PER {best['per_dev']:.2f}%)",
             "[prune]", f"density = {cfg.prune.density!r}", f"balance = {value(cfg.prune.balance)}"]
    lines += [f"{key} = {value(recipe[key])}" for key in ("recipe", *RECIPE_KEYS)]
    return "\n".join(lines) + "\n"
