"""One figure per cause of the pruning loss, from `ese prune --json` and sweep reports.

    .venv/bin/python benchmarks/pruning_diagnosis.py --out docs/pruning-diagnosis.png \\
        --curve "0.5 h, gradual=runs/exp/grad_r4f12.json" \\
        --point "0.5 h, ESE 2 ep/step=runs/default/report.json" \\
        --sweep runs/sweep/prune_sweep.json \\
        --bars "0.5 h, gradual=runs/exp/grad_r4f6.json" ...

Panels: (a) retraining: dev PER per training epoch of each gradual run (the density ramp, then
fine-tuning at the target) beside the dense model's dev PER, and where the iterative recipe ends
(dev PER after its total epochs); (b) capacity: test PER vs density per balance mode, mean ± sd
over seeds; (c) data and distillation: test PER of the dense model and of its 11% model, per
corpus size and recipe. Every number is read from the reports named on the command line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ese.report.plots import plt, save_figure


def _pairs(items: list[str]) -> list[tuple[str, dict]]:
    out = []
    for item in items:
        label, _, path = item.rpartition("=")
        out.append((label, json.loads(Path(path).read_text(encoding="utf-8"))))
    return out


def _prune_report(rep: dict) -> dict:
    """An `ese prune` report, or the `prune` section of an `ese run` report."""
    return rep["prune"] if "prune" in rep and isinstance(rep["prune"], dict) else rep


def _epochs(rep: dict) -> int:
    if rep.get("compute"):
        return int(rep["compute"]["epochs"])
    return int(rep.get("retrain_epochs", 0)) * len(rep["steps"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--curve", action="append", default=[], help="LABEL=prune.json (gradual)")
    ap.add_argument("--point", action="append", default=[], help="LABEL=prune.json (iterative)")
    ap.add_argument("--sweep", type=Path)
    ap.add_argument("--bars", action="append", default=[], help="LABEL=prune.json")
    args = ap.parse_args()

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax = axes[0]
    for label, rep in _pairs(args.curve):
        rep = _prune_report(rep)
        hist = rep["compute_steps"][0]["history"]
        line, = ax.plot([h["epoch"] for h in hist], [h["dev_per"] for h in hist], marker=".",
                        label=label)
        ax.axhline(rep["per_dense_dev"], color=line.get_color(), linestyle=":", linewidth=1)
    for label, rep in _pairs(args.point):
        rep = _prune_report(rep)
        ax.plot([_epochs(rep)], [rep["per_dev"]], marker="X", markersize=9, linestyle="none",
                label=label)
    ax.set_xlabel("training epochs spent pruning")
    ax.set_ylabel("dev PER (%)  (dotted: dense)")
    ax.set_title("(a) retraining: 11% models per epoch")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)

    ax = axes[1]
    if args.sweep:
        sweep = json.loads(args.sweep.read_text(encoding="utf-8"))
        for name, rows in sweep["series"].items():
            pts = sorted((100 * r["density"], r["per_test"], r.get("per_test_std") or 0.0)
                         for r in rows)
            x, y, err = zip(*pts)
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=name)
        ax.set_xscale("log")
        ax.set_title(f"(b) capacity: test PER vs density ({len(sweep['seeds'])} seeds)")
    ax.set_xlabel("density (%)")
    ax.set_ylabel("test PER (%)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)

    ax = axes[2]
    bars = _pairs(args.bars)
    for k, (label, rep) in enumerate(bars):
        rep = _prune_report(rep)
        ax.bar(k - 0.2, rep["per_dense_test"], width=0.4, color="grey",
               label="dense" if k == 0 else None)
        ax.bar(k + 0.2, rep["per_test"], width=0.4, color="tab:orange",
               label="11% balanced" if k == 0 else None)
        ax.annotate(f"+{rep['per_test'] - rep['per_dense_test']:.1f}",
                    (k + 0.2, rep["per_test"]), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(bars)), [b[0] for b in bars], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("test PER (%)")
    ax.set_title("(c) data and distillation")
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
