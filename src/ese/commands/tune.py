"""``ese tune``: search the pruning recipe (ese.stages.tune), locally or with Ray Tune + ASHA."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ese.commands.shared import BackendOpt, RayAddressOpt, ThreadsOpt, threads_override
from ese.outputs import writes


def _ints(text: str, what: str) -> tuple[int, ...]:
    from ese.errors import ConfigError

    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"{what} must be comma-separated integers like 1,2,3, not {text!r}") from None


def _floats(text: str, what: str) -> tuple[float, ...]:
    from ese.errors import ConfigError

    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"{what} must be comma-separated numbers like 0,0.5, not {text!r}") from None


def register(app: typer.Typer) -> None:
    app.command("tune")(tune)


@writes("json_path", dirs=("out", "cache_dir"))
def tune(
    checkpoint: Annotated[Path, typer.Argument(help="A dense checkpoint written by ese train / ese run.")],
    corpus: Annotated[Path, typer.Option("--corpus", help="Corpus root in TIMIT layout (the one the model was trained on).")],
    out: Annotated[Path, typer.Option("--out", help="Directory for the trials, trials.json / .md and best.toml (re-running resumes).")] = Path("runs/tune"),
    density: Annotated[Optional[float], typer.Option(help="Overall fraction of LSTM weights kept (default prune.density).")] = None,
    balance: Annotated[Optional[str], typer.Option(help="'pes:N' or 'none' (default prune.balance).")] = None,
    trials: Annotated[int, typer.Option("--trials", help="Recipes to try.")] = 8,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the recipe draw.")] = 0,
    ramp_epochs: Annotated[str, typer.Option("--ramp-epochs", help="Ramp lengths to draw from.")] = "1,2,3",
    finetune_epochs: Annotated[str, typer.Option("--finetune-epochs", help="Most fine-tuning epochs to draw from.")] = "1,2,4",
    lr_range: Annotated[str, typer.Option("--lr-range", help="LOW,HIGH of the log-uniform learning rate.")] = "3e-4,3e-3",
    distill: Annotated[str, typer.Option("--distill", help="Distillation weights to draw from (0 = off).")] = "0,0.3,0.5,0.7",
    temperatures: Annotated[str, typer.Option("--temperatures", help="Distillation temperatures to draw from.")] = "1,2,4",
    grace_epochs: Annotated[int, typer.Option("--grace-epochs", help="ASHA (ray): epochs at the target before a trial may be stopped.")] = 1,
    backend: BackendOpt = "local",
    ray_address: RayAddressOpt = "",
    threads: ThreadsOpt = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override one setting: section.key=value.")] = None,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Feature cache directory (default: features/ beside the checkpoint).")] = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Also write the summary to this JSON file.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress lines.")] = False,
) -> None:
    """Search the gradual pruning recipe (ramp, fine-tuning, learning rate, distillation) on dev PER;
    every trial resumable; writes a table of all trials and the best recipe as a TOML for
    ese prune --config. --backend ray runs the trials in parallel with Ray Tune and ASHA."""
    from ese.atomic import write_json
    from ese.commands.prune import _checkpoint_config, _load_sets
    from ese.commands.shared import console, err_console
    from ese.stages.prune import validate_prune_config
    from ese.stages.tune import SearchSpace, run_search, trial_recipes
    from ese.errors import ConfigError
    from ese.lock import work_lock
    from ese.parallel import check_backend, import_ray
    from ese.report.tables import print_table

    backend = check_backend(backend)
    if backend == "ray":
        import_ray()  # before minutes of feature extraction
    lo_hi = _floats(lr_range, "--lr-range")
    if len(lo_hi) != 2:
        raise ConfigError(f"--lr-range must be LOW,HIGH, not {lr_range!r}")
    space = SearchSpace(_ints(ramp_epochs, "--ramp-epochs"), _ints(finetune_epochs, "--finetune-epochs"),
                        (lo_hi[0], lo_hi[1]), _floats(distill, "--distill"),
                        _floats(temperatures, "--temperatures")).check()
    recipes = trial_recipes(space, trials, seed)
    cfg = _checkpoint_config(checkpoint, {"density": density, "balance": balance, "recipe": "gradual",
                                          "init": "dense"},
                             list(set_ or []) + threads_override(threads))
    validate_prune_config(cfg.prune)
    sets = _load_sets(corpus, cfg, cache_dir or checkpoint.parent / "features", ("train", "dev", "test"), quiet)
    with work_lock(out, "ese tune"):
        summary = run_search(checkpoint, cfg, sets, out, recipes, backend=backend, ray_address=ray_address,
                             grace_epochs=grace_epochs, say=None if quiet else err_console.log)
    rows = [[t["trial"], t["recipe"]["ramp_epochs"], t["recipe"]["finetune_epochs"], t["recipe"]["retrain_lr"],
             t["recipe"]["distill"], t["recipe"]["distill_temperature"], t["status"],
             "" if t["per_dev"] is None else t["per_dev"], "" if t["per_test"] is None else t["per_test"],
             t["compute"]["epochs"], t["compute"]["seconds"]] for t in summary["trials"]]
    print_table(f"ese tune: {len(rows)} trials ({backend}), density {cfg.prune.density:g} ({cfg.prune.balance})",
                ["trial", "ramp", "finetune", "lr", "distill", "T", "status", "dev PER %", "test PER %",
                 "epochs", "train s"], rows, console)
    if summary["best"] is None:
        console.print("no trial finished; see trials.md")
    else:
        console.print(f"best: trial {summary['best']['trial']} (dev PER {summary['best']['per_dev']:.2f}%), "
                      f"recipe in {summary['best_config']}")
    console.print(f"wrote {out / 'trials.json'}, {out / 'trials.md'}")
    if json_path:
        write_json(json_path, summary)
