"""Assemble a shipped compressed model directory (e.g. models/paper/) from the stage reports.

    python scripts/package_model.py --balanced B.json --unbalanced U.json --quantize Q.json \
        --qmodel model.qnpz --out models/paper [--per-matrix-densities]

B.json / U.json are `ese prune --json` reports (balanced and unbalanced pruning of the same dense
checkpoint), Q.json the `ese quantize --json` report of the balanced one. Writes OUT/report.json
(rates in percent) and copies the fixed-point model next to it.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from ese.atomic import write_json


def package(balanced: dict, unbalanced: dict | None, quant: dict) -> dict:
    bits = quant["model_bits"]
    report = {
        "density": 100 * balanced["density"],
        "balance": balanced["balance"],
        "n_pes": balanced["n_pes"],
        "per_dense": {"dev": balanced["per_dense_dev"], "test": balanced["per_dense_test"]},
        "per_pruned": {"dev": balanced["per_dev"], "test": balanced["per_test"]},
        "per_quantized": quant["per_quantized"],
        "imbalance_max_over_mean": balanced["imbalance_max_over_mean"],
        "weight_bits": quant["weight_bits"],
        "act_bits": quant["act_bits"],
        "saturation": quant["saturation"],
        "lut_error": quant["lut_error"],
        "model_bits": bits,
        "steps": balanced["steps"],
        "matrices": balanced["matrices"],
        "width_sweep": quant["sweep"],
    }
    if unbalanced is not None:
        report["unbalanced"] = {
            "density": 100 * unbalanced["density"],
            "per_pruned": {"dev": unbalanced["per_dev"], "test": unbalanced["per_test"]},
            "imbalance_max_over_mean": unbalanced["imbalance_max_over_mean"],
            "steps": unbalanced["steps"],
        }
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--balanced", type=Path, required=True)
    ap.add_argument("--unbalanced", type=Path)
    ap.add_argument("--quantize", type=Path, required=True)
    ap.add_argument("--qmodel", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    load = lambda p: json.loads(p.read_text()) if p else None  # noqa: E731
    report = package(load(args.balanced), load(args.unbalanced), load(args.quantize))
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.qmodel, args.out / args.qmodel.name)
    write_json(args.out / "report.json", report)
    print(json.dumps({k: report[k] for k in ("density", "per_dense", "per_pruned", "per_quantized",
                                             "imbalance_max_over_mean")}, indent=1))


if __name__ == "__main__":
    main()
