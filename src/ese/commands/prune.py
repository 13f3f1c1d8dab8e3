"""`ese` commands of the prune stage: ``ese prune`` and ``ese sensitivity``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ese.commands.shared import BackendOpt, RayAddressOpt
from ese.errors import ConfigError
from ese.outputs import writes
from ese.commands.shared import ThreadsOpt, threads_override

CkptArg = Annotated[Path, typer.Argument(help="A dense checkpoint written by ese train / ese run.")]
CorpusOpt = Annotated[Path, typer.Option("--corpus", help="Corpus root in TIMIT layout (the one the model was trained on).")]
CacheOpt = Annotated[Optional[Path], typer.Option(help="Feature cache directory (default: features/ beside the checkpoint).")]
JsonOpt = Annotated[Optional[Path], typer.Option("--json", help="Also write the figures to this JSON file.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", help="No progress bars.")]
DensityOpt = Annotated[Optional[float], typer.Option(help="Overall fraction of LSTM weights kept, in (0, 1] (default prune.density).")]
BalanceOpt = Annotated[Optional[str], typer.Option(help="'pes:N' (load-balance-aware over N PEs), 'rows:G' (equal counts per row in G-row groups), 'cluster:G[,pes:N]' (G-row clusters sharing their columns, balanced over N PEs, default 32) or 'none' (default prune.balance).")]


def _floats(text: str, what: str) -> tuple[float, ...]:
    if text.strip().lower() in ("", "none"):
        return ()
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"{what} must be comma-separated numbers like 0.5,0.3,0.2, not {text!r}") from None


def _checkpoint_config(checkpoint: Path, changes: dict[str, Any], overrides: list[str] | None = None,
                       seed: int | None = None, config: Path | None = None):
    """The config stored in ``checkpoint`` (model config from the checkpoint itself), with
    ``section.key=value`` ``overrides``, then ``changes`` applied to its prune section and
    ``seed`` to ``train.seed`` (the retraining's shuffling and dropout of chunks)."""
    from ese.model.checkpoint import checkpoint_config, load_checkpoint

    _, meta = load_checkpoint(checkpoint)
    cfg = checkpoint_config(meta, overrides, config)
    changes = {k: v for k, v in changes.items() if v is not None}
    cfg = dataclasses.replace(cfg, prune=dataclasses.replace(cfg.prune, **changes))
    if seed is not None:
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=seed))
    return cfg


def _load_sets(corpus: Path, cfg, cache_dir: Path, splits: tuple[str, ...], quiet: bool) -> dict:
    from ese.data.store import load_split

    return {s: load_split(corpus, s, cfg.features, cache_dir=cache_dir, progress=not quiet)
            for s in splits}


def register(app: typer.Typer) -> None:
    """Add this stage's commands to ``app``."""
    from ese.atomic import write_json
    from ese.commands.shared import console, err_console
    from ese.distributed import is_main
    from ese.report.tables import print_table

    @app.command()
    @writes("out", "json_path", dirs=("cache_dir",))
    def prune(
        checkpoint: CkptArg,
        corpus: CorpusOpt,
        out: Annotated[Path, typer.Option(help="Pruned checkpoint to write.")],
        density: DensityOpt = None,
        balance: BalanceOpt = None,
        steps: Annotated[Optional[str], typer.Option(help="Intermediate densities, e.g. 0.5,0.3,0.2, or none (default prune.steps).")] = None,
        retrain_epochs: Annotated[Optional[int], typer.Option(help="Masked retraining epochs after each step (default prune.retrain_epochs).")] = None,
        retrain_lr: Annotated[Optional[float], typer.Option(help="Learning rate of the retraining (default prune.retrain_lr).")] = None,
        per_matrix: Annotated[Optional[str], typer.Option(help="uniform, or sensitivity: per-matrix densities from a sensitivity scan.")] = None,
        recipe: Annotated[Optional[str], typer.Option(help="ese (prune -> retrain per step, the paper's) or gradual (cubic density ramp during one run) (default prune.recipe).")] = None,
        distill: Annotated[Optional[float], typer.Option(help="Weight in [0, 1] of distillation from the dense model's posteriors during retraining; 0 = off (default prune.distill).")] = None,
        seed: Annotated[Optional[int], typer.Option(help="Seed of the retraining (default train.seed of the checkpoint).")] = None,
        set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override one setting: section.key=value, e.g. prune.ramp_epochs=6.")] = None,
        resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run for the same --out.")] = False,
        threads: ThreadsOpt = None,
        config: Annotated[Optional[Path], typer.Option("--config", help="TOML file applied over the checkpoint's config before the flags (e.g. the best.toml of ese tune).")] = None,
        cache_dir: CacheOpt = None,
        json_path: JsonOpt = None,
        quiet: QuietOpt = False,
    ) -> None:
        """Prune a checkpoint iteratively with masked retraining; report density, per-PE non-zeros and PER."""
        from ese.stages.prune import prune_checkpoint

        cfg = _checkpoint_config(checkpoint, {
            "density": density, "balance": balance, "retrain_epochs": retrain_epochs,
            "retrain_lr": retrain_lr, "per_matrix": per_matrix, "recipe": recipe,
            "distill": distill,
            "steps": None if steps is None else _floats(steps, "--steps")},
            list(set_ or []) + threads_override(threads), seed, config)
        if steps is not None:
            from ese.compress.steps import check_explicit_steps
            check_explicit_steps(cfg.prune.steps, cfg.prune.density)
        sets = _load_sets(corpus, cfg, cache_dir or checkpoint.parent / "features",
                          ("train", "dev", "test"), quiet)
        report = prune_checkpoint(checkpoint, cfg, sets, out, resume=resume, progress=not quiet,
                                  say=None if quiet else err_console.log)
        rows = [[name, 100 * m["density"], m["nnz"], m["nnz_per_pe"]["min"], m["nnz_per_pe"]["mean"],
                 m["nnz_per_pe"]["max"], m["imbalance_max_over_mean"]]
                for name, m in report["matrices"].items()]
        rows.append(["all", 100 * report["density"], report["nnz"], "", "", "",
                     report["imbalance_max_over_mean"]])
        print_table(f"pruned {checkpoint} -> {out} (balance {report['balance']}, "
                    f"{report['n_pes']} PEs)",
                    ["matrix", "density %", "nnz", "PE min", "PE mean", "PE max", "max/mean"],
                    rows, console)
        print_table("phone error rate (%)", ["split", "dense", "pruned"],
                    [["dev", report["per_dense_dev"], report["per_dev"]],
                     ["test", report["per_dense_test"], report["per_test"]]], console)
        if json_path and is_main():  # a data-parallel job's rank 0
            write_json(json_path, report)

    @app.command()
    @writes("json_path", dirs=("out", "cache_dir"))
    def sensitivity(
        checkpoint: CkptArg,
        corpus: CorpusOpt,
        out: Annotated[Path, typer.Option(help="Directory for sensitivity.json, .md and .png.")],
        densities: Annotated[Optional[str], typer.Option(help="Densities to scan, e.g. 1,0.5,0.3,0.2,0.1,0.05 (default prune.sensitivity_densities).")] = None,
        balance: BalanceOpt = None,
        density: Annotated[Optional[float], typer.Option(help="Overall target for the per-matrix allocation (default prune.density).")] = None,
        backend: BackendOpt = "local",
        ray_address: RayAddressOpt = "",
        cache_dir: CacheOpt = None,
        json_path: JsonOpt = None,
        quiet: QuietOpt = False,
    ) -> None:
        """Prune one matrix at a time (no retraining), measure dev PER, and allocate per-matrix densities."""
        from ese.compress.prune import make_pruner
        from ese.compress.sensitivity import allocate_densities, sensitivity_table
        from ese.stages.sensitivity import write_sensitivity
        from ese.model.checkpoint import load_checkpoint

        cfg = _checkpoint_config(checkpoint, {
            "balance": balance, "density": density,
            "sensitivity_densities": None if densities is None else _floats(densities, "--densities")})
        from ese.stages.prune import validate_prune_config

        from ese.parallel import check_backend
        from ese.threads import torch_threads

        validate_prune_config(cfg.prune)
        model, _ = load_checkpoint(checkpoint)
        dev = _load_sets(corpus, cfg, cache_dir or checkpoint.parent / "features", ("dev",), quiet)["dev"]
        with torch_threads(cfg.train.threads):
            table = sensitivity_table(model, dev, cfg.train.output_delay,
                                      make_pruner(cfg.prune.balance, cell=cfg.model.cell),
                                      cfg.prune.sensitivity_densities, progress=not quiet,
                                      backend=check_backend(backend), ray_address=ray_address)
        table["allocation"] = {"target": cfg.prune.density,
                               "densities": allocate_densities(table, cfg.prune.density)}
        paths = write_sensitivity(table, out, title=f"sensitivity of {checkpoint.name}")
        header = ["matrix"] + [f"{100 * d:g}%" for d in table["densities"]] + ["alloc %"]
        rows = [[name] + row["per"] + [100 * table["allocation"]["densities"][name]]
                for name, row in table["matrices"].items()]
        print_table(f"dev PER (%) with one matrix pruned (dense {table['dense_per']:.2f})",
                    header, rows, console)
        console.print("wrote " + ", ".join(str(p) for p in paths))
        if json_path:
            write_json(json_path, table)
