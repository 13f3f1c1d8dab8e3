"""The prune stage: prune -> retrain with the masks held -> prune further, to the target density.

``prune_checkpoint`` is the driver the CLI and ``ese run`` call. The step densities are
``PruneConfig.steps`` above the target, then the target (e.g. 0.5 -> 0.3 -> 0.2 -> 0.11). Each step
prunes the current weights (never reviving a pruned one), retrains ``retrain_epochs`` epochs at
``retrain_lr`` with ``train_model(masks=...)`` so pruned weights stay exactly zero, and scores dev
(and test) PER. After every step the state (weights, masks, results) is written atomically to
``<out>.work/state.pt``; the retraining of a step checkpoints every epoch to ``step<k>.pt``.
``resume=True`` after a kill therefore continues inside the step it was in. The work directory is
removed once the pruned checkpoint is written.

The pruned checkpoint is an ordinary checkpoint (``load_checkpoint`` reads it) with two more
entries: ``masks`` (bool tensor per pruned matrix) and ``prune`` (the report below, with the
recipe that produced it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any, Callable

import torch

from ese import distributed
from ese.atomic import write_json
from ese.compress.gradual import GradualPruning
from ese.compress.prune import (apply_masks, check_density, make_pruner, mask_stats,
                                parse_balance, prunable_names)
from ese.compress.sensitivity import allocate_densities, sensitivity_table
from ese.config import Config, PruneConfig
from ese.data.dataset import FeatureSet
from ese.errors import CheckpointError, ConfigError, FeatureError
from ese.lock import work_lock
from ese.model.checkpoint import load_checkpoint, read_checked, save_checkpoint, write_checked
from ese.model.decode import evaluate
from ese.model.lstmp import AcousticModel
from ese.model.train import Distillation, train_model
from ese.threads import resolve_threads

log = logging.getLogger(__name__)

STATE_VERSION = 1
PER_MATRIX = ("uniform", "sensitivity")
RECIPES = ("ese", "gradual")


def validate_prune_config(pcfg: PruneConfig) -> None:
    """ConfigError quoting the first bad value of ``pcfg``."""
    check_density(pcfg.density, "prune.density")
    parse_balance(pcfg.balance)
    for s in pcfg.steps:
        check_density(s, "prune.steps entry")
    for s in pcfg.sensitivity_densities:
        check_density(s, "prune.sensitivity_densities entry")
    if pcfg.retrain_epochs < 0:
        raise ConfigError(f"prune.retrain_epochs must be >= 0, not {pcfg.retrain_epochs!r}")
    if not pcfg.retrain_lr > 0:
        raise ConfigError(f"prune.retrain_lr must be > 0, not {pcfg.retrain_lr!r}")
    if pcfg.per_matrix not in PER_MATRIX:
        raise ConfigError(f"prune.per_matrix must be 'uniform' or 'sensitivity', "
                          f"not {pcfg.per_matrix!r}")
    if pcfg.report_pes < 1:
        raise ConfigError(f"prune.report_pes must be >= 1, not {pcfg.report_pes!r}")
    if pcfg.recipe not in RECIPES:
        raise ConfigError(f"prune.recipe must be one of {', '.join(RECIPES)}, not {pcfg.recipe!r}")
    if pcfg.init not in ("dense", "scratch"):
        raise ConfigError(f"prune.init must be 'dense' or 'scratch', not {pcfg.init!r}")
    if pcfg.dense_epochs < 0:
        raise ConfigError(f"prune.dense_epochs must be >= 0, not {pcfg.dense_epochs!r}")
    for name in ("ramp_epochs", "finetune_epochs", "updates_per_epoch"):
        if getattr(pcfg, name) < 1:
            raise ConfigError(f"prune.{name} must be >= 1, not {getattr(pcfg, name)!r}")
    if not 0.0 <= pcfg.distill <= 1.0:
        raise ConfigError(f"prune.distill must be in [0, 1], not {pcfg.distill!r}")
    if not pcfg.distill_temperature > 0:
        raise ConfigError(f"prune.distill_temperature must be > 0, not "
                          f"{pcfg.distill_temperature!r}")


def step_densities(pcfg: PruneConfig) -> list[float]:
    """Overall density of each step: the configured steps above the target, then the target."""
    target = check_density(pcfg.density, "prune.density")
    return sorted({float(s) for s in pcfg.steps if s > target}, reverse=True) + [target]


def stats_pes(pcfg: PruneConfig) -> int:
    """PEs the per-PE statistics are computed for: the balance's N, else ``report_pes``."""
    n = parse_balance(pcfg.balance)
    return pcfg.report_pes if n is None else n


def weights_fingerprint(model: AcousticModel) -> str:
    """sha256 prefix of the model's weights: ties a resumable state to its source checkpoint."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:20]


class _Log:
    def __init__(self, fn: Callable[[str], None] | None) -> None:
        self.fn = fn

    def __call__(self, msg: str) -> None:
        if not distributed.is_main():  # a data-parallel job speaks through rank 0
            return
        log.info(msg)
        if self.fn is not None:
            self.fn(msg)


def prune_checkpoint(ckpt_path: str | Path, cfg: Config, sets: dict[str, FeatureSet],
                     out_path: str | Path, *, resume: bool = True, progress: bool = True,
                     say: Callable[[str], None] | None = None,
                     on_epoch: Callable[[dict[str, Any], bool], None] | None = None) -> dict[str, Any]:
    """Prune the dense checkpoint ``ckpt_path`` as ``cfg.prune`` says; write ``out_path``.

    ``sets`` needs ``train`` and ``dev`` (``test`` optional, scored when present). ``cfg.model``
    must match the checkpoint's model; ``cfg.train`` sets up the retraining (its epochs and lr are
    replaced by ``prune.retrain_epochs`` / ``prune.retrain_lr``). With ``resume``, a finished
    ``out_path`` of the same recipe is returned without work and a killed run continues;
    without it, any earlier state is discarded. ``cfg.train.threads`` sets the torch threads for
    the whole run (0: chosen from the machine's load, or the resumed run's recorded count).
    ``on_epoch`` is handed to every retraining (:func:`ese.model.train.train_model`). Returns the report (see docs/pruning.md).
    """
    threads_before = torch.get_num_threads()
    try:  # _prune sets the count for the whole run once it knows whether it resumes
        with work_lock(Path(out_path).parent, "ese prune", name=f".{Path(out_path).name}.lock"):
            return _prune(ckpt_path, cfg, sets, out_path, resume=resume, progress=progress, say=say,
                          on_epoch=on_epoch)
    finally:
        torch.set_num_threads(threads_before)


def _prune(ckpt_path: str | Path, cfg: Config, sets: dict[str, FeatureSet], out_path: str | Path,
           *, resume: bool, progress: bool, say: Callable[[str], None] | None,
           on_epoch: Callable[[dict[str, Any], bool], None] | None = None) -> dict[str, Any]:
    pcfg = cfg.prune
    validate_prune_config(pcfg)
    for split in ("train", "dev"):
        if split not in sets or len(sets[split]) == 0:
            raise FeatureError(f"pruning needs utterances in the {split!r} set")
    ckpt_path, out_path = Path(ckpt_path), Path(out_path)
    if ckpt_path.resolve() == out_path.resolve():
        raise ConfigError(f"the pruned checkpoint must not overwrite its source {str(ckpt_path)!r}")
    say_ = _Log(say)
    dense, meta = load_checkpoint(ckpt_path, expect=cfg.model)
    if meta.get("normalisation") is None and sets["train"].normalisation is not None:
        meta["normalisation"] = sets["train"].normalisation  # a source from before it was recorded
    recipe = {"source": weights_fingerprint(dense), "prune": dataclasses.asdict(pcfg),
              "train": dataclasses.asdict(cfg.train), "model": dataclasses.asdict(cfg.model)}
    recipe = json.loads(json.dumps(recipe))  # tuples -> lists, as they come back from a file

    main = distributed.is_main()  # rank 0 reads and writes the files; the others get its answers
    if resume:
        done = load_checkpoint(out_path)[1].get("prune", {}) if main and out_path.exists() else {}
        done = distributed.broadcast_object(done)
        if done.get("recipe") == recipe:
            say_(f"{out_path} is already pruned with this recipe; nothing to do")
            return done
    work = out_path.parent / f"{out_path.name}.work"
    if not resume and work.exists() and main:
        shutil.rmtree(work)
    state = _load_state(work / "state.pt", recipe) if resume and main else None
    state = distributed.broadcast_object(state) if resume else None
    delay = cfg.train.output_delay
    splits = [s for s in ("dev", "test") if s in sets and len(sets[s])]
    # the scoring and scans too, not only the retraining; every rank uses rank 0's count
    threads = distributed.broadcast_object(resolve_threads(
        cfg.train.threads, resuming=state is not None,
        recorded=state.get("threads") if state is not None else None,
        default=torch.get_num_threads()) if main else None)
    torch.set_num_threads(threads.count)
    if cfg.train.threads <= 0:
        say_(f"threads: {threads.count} ({threads.reason}; --threads N sets it)")

    if state is None:
        dense_per = {s: evaluate(dense, sets[s], delay)["per"] for s in splits}
        state = {"version": STATE_VERSION, "recipe": recipe, "dense_per": dense_per,
                 "steps": [], "weights": dense.state_dict(), "masks": None,
                 "threads": threads.count}
        _save_state(work / "state.pt", state)
    state["threads"] = threads.count
    # the retrainings use the same count (and record it in their own checkpoints)
    tcfg = dataclasses.replace(cfg.train, threads=threads.count)
    n_stats = stats_pes(pcfg)
    pruner = make_pruner(pcfg.balance, pcfg.density, cfg.model.cell)
    table = None
    if pcfg.per_matrix == "sensitivity":
        table = _cached_sensitivity(work / "sensitivity.json", dense, sets["dev"], delay, pruner,
                                    pcfg, progress, say_)

    model = AcousticModel(cfg.model)
    model.load_state_dict(state["weights"])
    masks = state["masks"]

    def allocate(overall: float) -> dict[str, float]:
        return (allocate_densities(table, overall) if table is not None
                else {n: overall for n in prunable_names(model)})

    distill = (Distillation(dense, pcfg.distill, pcfg.distill_temperature)
               if pcfg.distill > 0 else None)
    n_train = sets["train"].num_frames
    if pcfg.recipe == "gradual":
        targets = [pcfg.density]
        scratch = pcfg.init == "scratch"
        gradual_cfg = dataclasses.replace(cfg, train=dataclasses.replace(
            tcfg, epochs=pcfg.dense_epochs * scratch + pcfg.ramp_epochs + pcfg.finetune_epochs,
            lr=cfg.train.lr if scratch else pcfg.retrain_lr))
    else:
        targets = step_densities(pcfg)
        retrain_cfg = dataclasses.replace(cfg, train=dataclasses.replace(
            tcfg, epochs=max(pcfg.retrain_epochs, 1), lr=pcfg.retrain_lr))
    for k, overall in enumerate(targets):
        if k < len(state["steps"]):
            continue
        history: list[dict[str, Any]] = []
        if pcfg.recipe == "gradual":
            say_(f"gradual{' from scratch' if scratch else ''}: density 1 -> {overall:.3f} over "
                 f"{pcfg.ramp_epochs} epoch(s), then up to {pcfg.finetune_epochs} at the target"
                 + (f", distillation {pcfg.distill:g}" if distill else ""))
            ramp = GradualPruning(pruner, overall, pcfg.ramp_epochs, pcfg.updates_per_epoch,
                                  allocate=allocate, dense_epochs=pcfg.dense_epochs * scratch)
            res = train_model(gradual_cfg, sets["train"], sets["dev"], work / "gradual.pt",
                              resume=resume, progress=progress,
                              init_weights=None if scratch else model.state_dict(),
                              masks=masks, mask_schedule=ramp, distill=distill, on_epoch=on_epoch)
            model, masks, history = res.model, res.masks, res.history
        else:
            masks = pruner.compute_masks(model, allocate(overall), prev=masks)
            apply_masks(model, masks)
            say_(f"step {k + 1}: density {overall:.3f}, retraining {pcfg.retrain_epochs} epoch(s)")
            if pcfg.retrain_epochs > 0:
                res = train_model(retrain_cfg, sets["train"], sets["dev"], work / f"step{k}.pt",
                                  resume=resume, progress=progress,
                                  init_weights=model.state_dict(), masks=masks, distill=distill,
                                  on_epoch=on_epoch)
                model, history = res.model, res.history
        model.eval()
        per = {s: evaluate(model, sets[s], delay)["per"] for s in splits}
        st = mask_stats(masks, n_stats, cfg.model.cell)
        state["steps"].append({"step": k + 1, "target": overall, "density": st["density"],
                               "densities": {n: m["density"] for n, m in st["matrices"].items()},
                               "imbalance_max_over_mean": st["imbalance_max_over_mean"],
                               "per_dev": per.get("dev"), "per_test": per.get("test")})
        state.setdefault("compute", []).append(_compute_cost(history, n_train))
        state["weights"], state["masks"] = model.state_dict(), masks
        _save_state(work / "state.pt", state)
        say_(f"step {k + 1}: density {st['density']:.3f}  dev PER {per['dev']:.2f}%  "
             f"imbalance {st['imbalance_max_over_mean']:.3f}")

    st = mask_stats(masks, n_stats, cfg.model.cell)
    last = state["steps"][-1]
    report = {
        "source": str(ckpt_path), "checkpoint": str(out_path),
        "target_density": pcfg.density, "density": st["density"], "nnz": st["nnz"],
        "weights": st["weights"], "balance": pcfg.balance, "n_pes": n_stats,
        "per_matrix": pcfg.per_matrix, "retrain_epochs": pcfg.retrain_epochs,
        "imbalance_max_over_mean": st["imbalance_max_over_mean"],
        "matrices": st["matrices"],
        "per_dev": last["per_dev"], "per_test": last["per_test"],
        "per_dense_dev": state["dense_per"].get("dev"),
        "per_dense_test": state["dense_per"].get("test"),
        "steps": state["steps"], "sensitivity": table, "recipe": recipe,
        "method": pcfg.recipe, "distill": pcfg.distill,
        "compute": _total_cost(state.get("compute", [])),
        "compute_steps": state.get("compute", []), "threads": threads.count,
    }
    if main:
        save_pruned_checkpoint(out_path, model, masks, report, cfg=cfg, meta=meta)
        shutil.rmtree(work, ignore_errors=True)
    return report


def _compute_cost(history: list[dict[str, Any]], train_frames: int) -> dict[str, float]:
    """Training compute of one step: epochs, frames seen (epochs x train frames), seconds, and
    the per-epoch learning curve (to see where a recipe stops paying)."""
    return {"epochs": len(history), "frames": len(history) * train_frames,
            "seconds": float(sum(row["seconds"] for row in history)),
            "history": [{k: row[k] for k in ("epoch", "train_loss", "dev_loss", "dev_per", "lr")}
                        for row in history]}


def _total_cost(costs: list[dict[str, float]]) -> dict[str, float]:
    """The steps' compute summed (seconds are wall time of the training epochs only)."""
    return {key: sum(c[key] for c in costs) for key in ("epochs", "frames", "seconds")}


def save_pruned_checkpoint(path: Path, model: AcousticModel, masks: dict[str, torch.Tensor],
                           report: dict[str, Any], *, cfg: Config, meta: dict[str, Any]) -> None:
    """An ordinary checkpoint plus ``masks`` and ``prune`` entries, written atomically."""
    save_checkpoint(path, model, config=cfg.to_dict(), epoch=meta.get("epoch", 0),
                    best_epoch=meta.get("best_epoch"), history=meta.get("history"), extra=meta.get("extra"),
                    normalisation=meta.get("normalisation"),
                    entries={"masks": {k: v.to(torch.bool).clone() for k, v in masks.items()},
                             "prune": report})


def load_masks(meta: dict[str, Any], model: AcousticModel, where: str) -> dict[str, torch.Tensor]:
    """The masks of a pruned checkpoint's ``meta``, checked against ``model``'s shapes."""
    masks = meta.get("masks")
    if not isinstance(masks, dict):
        raise CheckpointError(f"checkpoint {where!r} is not pruned (it has no masks)")
    params = dict(model.named_parameters())
    for name, m in masks.items():
        if name not in params or tuple(m.shape) != tuple(params[name].shape):
            raise CheckpointError(f"checkpoint {where!r}: mask {name!r} does not fit the model")
    return masks


def _load_state(path: Path, recipe: dict[str, Any]) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        state = read_checked(path, "pruning state")
    except CheckpointError as exc:
        raise CheckpointError(f"{exc}; run without --resume to start over") from None
    if state.get("version") != STATE_VERSION or state.get("recipe") != recipe:
        raise CheckpointError(f"pruning state {str(path)!r} was made from another checkpoint or "
                              "with other settings; run without --resume to start over")
    return state


def _save_state(path: Path, state: dict[str, Any]) -> None:
    if distributed.is_main():
        write_checked(path, state)


def _cached_sensitivity(path: Path, dense: AcousticModel, dev: FeatureSet, delay: int, pruner,
                        pcfg: PruneConfig, progress: bool, say: _Log) -> dict[str, Any]:
    key = {"pruner": pruner.state_dict(), "densities": sorted(pcfg.sensitivity_densities,
                                                               reverse=True)}
    if path.exists():
        table = json.loads(path.read_text(encoding="utf-8"))
        if table.get("key") == json.loads(json.dumps(key)):
            return table
    say("sensitivity scan: one matrix at a time, no retraining")
    table = sensitivity_table(dense, dev, delay, pruner, pcfg.sensitivity_densities,
                              progress=progress)
    table["key"] = key
    if distributed.is_main():
        write_json(path, table)
    return table
