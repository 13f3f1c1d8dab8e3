"""PER vs density, balanced vs unbalanced pruning, from one dense checkpoint (issue 3, section 4).

    .venv/bin/python benchmarks/prune_experiment.py CKPT --corpus CORPUS --out DIR \\
        [--densities 1,0.5,0.3,0.2,0.11,0.08,0.05] [--modes none,pes:32,rows:16] \\
        [--seeds 0,1,2] [--recipe ese|gradual] [--distill 0.5] [--retrain-epochs 2] \\
        [--retrain-lr 5e-4] [--per-matrix uniform] [--set prune.key=value] [--independent] [--quiet]

Default (chained): one iterative schedule per balance mode whose steps ARE the densities
(0.5 -> 0.3 -> 0.2 -> 0.11 -> 0.05, retraining after each), so the whole curve costs one prune run
per mode; each step's dev / test PER and per-PE imbalance is a row. ``--independent`` instead
prunes to every density separately (the configured prune.steps above it, then it): costlier, and
the checkpoints of every density are kept (``DIR/<mode>-<density>.pt``).

``--seeds`` repeats every run with that retraining seed (``train.seed``); the tables and the plot
give the mean and the standard deviation over the seeds, the JSON every seed's row too.

Resumable: every run goes through ``prune_checkpoint(resume=True)``, so re-running the same
command after a kill continues, and finished runs are read back instead of redone. Writes
``DIR/prune_sweep.json``, ``DIR/prune_sweep.md`` and ``DIR/prune_sweep.png`` (test PER vs density).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console

from ese.atomic import atomic_open, write_json
from ese.stages.prune import prune_checkpoint
from ese.data.store import load_split
from ese.errors import EseError
from ese.model.checkpoint import checkpoint_config, load_checkpoint
from ese.report.prune_plots import density_sweep_plot
from ese.report.tables import markdown_table, print_table


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def _mode_name(mode: str) -> str:
    return "unbalanced" if mode == "none" else f"balanced-{mode.replace(':', '')}"


def sweep(args: argparse.Namespace, console: Console) -> dict:
    _, meta = load_checkpoint(args.checkpoint)
    cfg = checkpoint_config(meta, args.set)
    changes = {k: v for k, v in (("retrain_epochs", args.retrain_epochs),
                                 ("retrain_lr", args.retrain_lr),
                                 ("per_matrix", args.per_matrix), ("recipe", args.recipe),
                                 ("distill", args.distill)) if v is not None}
    cfg = dataclasses.replace(cfg, prune=dataclasses.replace(cfg.prune, **changes))
    cache = args.cache_dir or args.checkpoint.parent / "features"
    sets = {s: load_split(args.corpus, s, cfg.features, cache_dir=cache, progress=not args.quiet)
            for s in ("train", "dev", "test")}
    densities = sorted({d for d in _floats(args.densities) if d < 1.0}, reverse=True)
    seeds = [int(v) for v in args.seeds.split(",")]
    say = None if args.quiet else console.log
    per_seed: dict[str, dict[int, list[dict]]] = {}
    t0 = time.perf_counter()
    for mode in args.modes.split(","):
        name = _mode_name(mode)
        for seed in seeds:
            run_cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=seed))
            tag = f"{name}-s{seed}"
            per_seed.setdefault(name, {})[seed] = _one_series(args, run_cfg, sets, mode, tag,
                                                              densities, say)
    return {"checkpoint": str(args.checkpoint), "corpus": str(args.corpus),
            "chained": not args.independent, "recipe": cfg.prune.recipe,
            "distill": cfg.prune.distill, "retrain_epochs": cfg.prune.retrain_epochs,
            "retrain_lr": cfg.prune.retrain_lr, "per_matrix": cfg.prune.per_matrix,
            "seeds": seeds, "model": dataclasses.asdict(cfg.model),
            "seconds": time.perf_counter() - t0,
            "series": {name: _mean_rows(runs) for name, runs in per_seed.items()},
            "per_seed": {name: {str(k): v for k, v in runs.items()}
                         for name, runs in per_seed.items()}}


_KEYS = ("target", "density", "per_dev", "per_test", "imbalance_max_over_mean")


def _one_series(args, cfg, sets, mode: str, tag: str, densities: list[float], say) -> list[dict]:
    """Rows (dense first) of one balance mode and seed: a chained schedule or independent runs."""
    if args.independent:
        rows = []
        for d in densities:
            pcfg = dataclasses.replace(cfg.prune, balance=mode, density=d)
            rep = prune_checkpoint(args.checkpoint, dataclasses.replace(cfg, prune=pcfg), sets,
                                   args.out / f"{tag}-{d:g}.pt", resume=True,
                                   progress=not args.quiet, say=say)
            rows.append({k: rep[k] for k in ("density", "per_dev", "per_test",
                                               "imbalance_max_over_mean")} | {"target": d})
    else:
        pcfg = dataclasses.replace(cfg.prune, balance=mode, density=densities[-1],
                                   steps=tuple(densities[:-1]))
        rep = prune_checkpoint(args.checkpoint, dataclasses.replace(cfg, prune=pcfg), sets,
                               args.out / f"{tag}-chain.pt", resume=True,
                               progress=not args.quiet, say=say)
        rows = [{k: s[k] for k in _KEYS} for s in rep["steps"]]
    dense = {"target": 1.0, "density": 1.0, "per_dev": rep["per_dense_dev"],
             "per_test": rep["per_dense_test"], "imbalance_max_over_mean": None}
    return [dense] + rows


def _mean_rows(runs: dict[int, list[dict]]) -> list[dict]:
    """Per density: the mean of every figure over the seeds, plus ``*_std`` of the PERs."""
    out = []
    for rows in zip(*runs.values()):
        row = {}
        for key in _KEYS:
            vals = [r[key] for r in rows if r[key] is not None]
            row[key] = float(np.mean(vals)) if vals else None
        for key in ("per_dev", "per_test"):
            row[f"{key}_std"] = float(np.std([r[key] for r in rows], ddof=1)) if len(rows) > 1 else 0.0
        out.append(row)
    return out


def _table_rows(result: dict) -> list[list]:
    rows = []
    for name, series in result["series"].items():
        for r in series:
            imb = r["imbalance_max_over_mean"]
            rows.append([name, 100 * r["target"], 100 * r["density"],
                         f"{r['per_dev']:.2f} ± {r.get('per_dev_std', 0.0):.2f}",
                         f"{r['per_test']:.2f} ± {r.get('per_test_std', 0.0):.2f}",
                         "" if imb is None else imb])
    return rows


HEADER = ["pruning", "target %", "density %", "dev PER % (mean ± sd)", "test PER % (mean ± sd)",
          "PE max/mean"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--densities", default="1,0.5,0.3,0.2,0.11,0.08,0.05")
    ap.add_argument("--modes", default="none,pes:32,rows:16",
                    help="balance settings, comma-separated")
    ap.add_argument("--seeds", default="0", help="retraining seeds, comma-separated")
    ap.add_argument("--recipe", default=None, help="ese or gradual (default: the checkpoint's)")
    ap.add_argument("--distill", type=float, default=None, help="distillation weight in [0, 1]")
    ap.add_argument("--set", action="append", default=[], help="section.key=value override")
    ap.add_argument("--retrain-epochs", type=int, default=None)
    ap.add_argument("--retrain-lr", type=float, default=None)
    ap.add_argument("--per-matrix", default=None, help="uniform or sensitivity")
    ap.add_argument("--independent", action="store_true")
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    console = Console()
    try:
        result = sweep(args, console)
    except EseError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}")
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "prune_sweep.json", result)
    density_sweep_plot(result["series"], args.out / "prune_sweep.png",
                       title=f"PER vs density ({args.checkpoint.name})")
    with atomic_open(args.out / "prune_sweep.md", "w", encoding="utf-8") as fh:
        fh.write(f"# PER vs density: {args.checkpoint}\n\n"
                 f"{'chained schedule' if result['chained'] else 'independent runs'}, "
                 f"recipe {result['recipe']}, distillation {result['distill']:g}, "
                 f"seeds {', '.join(map(str, result['seeds']))}, "
                 f"{result['retrain_epochs']} retraining epoch(s) per step at lr "
                 f"{result['retrain_lr']:g}, per-matrix densities: {result['per_matrix']}\n\n"
                 + markdown_table(HEADER, _table_rows(result))
                 + "\n\n![PER vs density](prune_sweep.png)\n")
    print_table("PER vs density", HEADER, _table_rows(result), console)
    console.print(f"wrote {args.out / 'prune_sweep.md'} ({result['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
