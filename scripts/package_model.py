"""Assemble a shipped compressed model directory (e.g. models/paper/) from the stage reports.

    python scripts/package_model.py --balanced B.json --unbalanced U.json --quantize Q.json \
        --qmodel model.qnpz --out models/paper [--seed P1.json:Q1.json --seed P2.json:Q2.json ...] \
        [--checkpoint PRUNED.pt --corpus CORPUS]

``--decoded dense=S.json --decoded pruned=S.json --decoded quantized=S.json`` (each a
``scripts/switch_penalty_sweep.py --json`` of that model) puts the PER of today's decoder
(``ese.model.phone_loop.SWITCH_PENALTY``) on every split it scored (dev, test, proxy) in
``per_dense`` / ``per_pruned`` / ``per_quantized``, and moves the stage reports' own figures
(decoded as they were when the stages ran) to ``per_at_stage``; ``decoder`` says which is which.

B.json / U.json are `ese prune --json` reports (balanced and unbalanced pruning of the same dense
checkpoint), Q.json the `ese quantize --json` report of the balanced one. Each ``--seed`` names
the prune and quantize reports of one more seed of the same recipe (the shipped run counts as a
seed too); ``seeds`` then holds one row per seed and ``seed_summary`` the mean and standard
deviation of each PER and of the loss (quantized - dense). Writes OUT/report.json (rates in
percent) and the fixed-point model next to it, self-contained: a model that lacks what inference
needs (written before ese recorded it) is completed from ``--checkpoint`` (the pruned checkpoint
it was quantized from) and ``--corpus`` (its normalisation statistics, when the checkpoint has
none), with its integer weights checked bit-identical (``ese complete``); an incomplete model
without those is refused.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
from pathlib import Path

from ese.artefact import open_artefact
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
        "recipe": recipe_of(balanced),
    }
    if unbalanced is not None:
        report["unbalanced"] = {
            "density": 100 * unbalanced["density"],
            "per_pruned": {"dev": unbalanced["per_dev"], "test": unbalanced["per_test"]},
            "imbalance_max_over_mean": unbalanced["imbalance_max_over_mean"],
            "steps": unbalanced["steps"],
        }
    return report


def recipe_of(prune: dict) -> dict:
    """The settings that made a pruned model (from the prune report's ``recipe``) and its cost."""
    rec = prune.get("recipe") or {}
    pcfg, tcfg = rec.get("prune", {}), rec.get("train", {})
    keys = ("recipe", "density", "balance", "steps", "retrain_epochs", "retrain_lr", "ramp_epochs",
            "finetune_epochs", "updates_per_epoch", "init", "distill", "distill_temperature")
    return {"method": prune.get("method", pcfg.get("recipe", "ese")),
            "prune": {k: pcfg[k] for k in keys if k in pcfg},
            "train": {k: tcfg[k] for k in ("seed", "batch_size", "chunk_frames", "precision",
                                           "patience", "lr_decay") if k in tcfg},
            "compute": prune.get("compute")}


def seed_row(prune: dict, quant: dict) -> dict:
    """One seed: its dense, pruned and quantized PER (dev and test) and the loss."""
    seed = (prune.get("recipe") or {}).get("train", {}).get("seed")
    dense = {"dev": prune["per_dense_dev"], "test": prune["per_dense_test"]}
    qper = quant["per_quantized"]
    return {"seed": seed, "per_dense": dense,
            "per_pruned": {"dev": prune["per_dev"], "test": prune["per_test"]},
            "per_quantized": {"dev": qper["dev"], "test": qper["test"]},
            "loss": {s: qper[s] - dense[s] for s in ("dev", "test")}}


def summarize(rows: list[dict]) -> dict:
    """Mean and sample standard deviation over seeds of every PER and of the loss."""
    out: dict = {"n": len(rows)}
    for key in ("per_dense", "per_pruned", "per_quantized", "loss"):
        out[key] = {}
        for split in ("dev", "test"):
            vals = [r[key][split] for r in rows]
            out[key][split] = {"mean": statistics.fmean(vals),
                               "std": statistics.stdev(vals) if len(vals) > 1 else 0.0}
    return out


def decoded(report: dict, sweeps: dict[str, dict], penalty: float) -> dict:
    """``report`` with its PER figures from the sweeps at ``penalty`` (see the module docstring)."""
    key = f"{penalty:g}"
    report["per_at_stage"] = {k: report[k] for k in ("per_dense", "per_pruned", "per_quantized")}
    for kind, sweep in sweeps.items():
        if any(key not in per for per in sweep["per"].values()):
            raise SystemExit(f"the {kind} sweep has no penalty {key}")
        report[f"per_{kind}"] = {split: per[key]["per"] for split, per in sweep["per"].items()}
        report.setdefault("edits", {})[kind] = {split: {e: per[key][e] for e in ("sub", "del", "ins", "n_ref")}
                                                for split, per in sweep["per"].items()}
    report["decoder"] = {"per_dense/per_pruned/per_quantized": f"phone-loop Viterbi, switch penalty {key} nats",
                         "per_at_stage": "as the stage reports decoded when they ran"}
    return report


def ship_model(qmodel: Path, dest: Path, checkpoint: Path | None, corpus: Path | None,
               cache_dir: Path | None) -> dict:
    """Copy ``qmodel`` to ``dest`` complete (see the module docstring); returns what was filled."""
    art = open_artefact(qmodel)
    if not art.missing():
        if qmodel.resolve() != dest.resolve():
            shutil.copyfile(qmodel, dest)
        return {}
    if checkpoint is None and corpus is None:
        art.require()  # one line: what it lacks and how to complete it
    from ese.complete import complete_artefact
    return complete_artefact(qmodel, dest, source=checkpoint, corpus=corpus, cache_dir=cache_dir)["filled"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--balanced", type=Path, required=True)
    ap.add_argument("--unbalanced", type=Path)
    ap.add_argument("--quantize", type=Path, required=True)
    ap.add_argument("--qmodel", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", action="append", default=[],
                    help="PRUNE.json:QUANTIZE.json of another seed of the same recipe")
    ap.add_argument("--checkpoint", type=Path, help="the checkpoint --qmodel was quantized from (completes it)")
    ap.add_argument("--corpus", type=Path, help="the corpus it was trained on (normalisation statistics)")
    ap.add_argument("--cache-dir", type=Path, help="feature cache for --corpus")
    ap.add_argument("--decoded", action="append", default=[],
                    help="dense|pruned|quantized=SWEEP.json (scripts/switch_penalty_sweep.py) of that model")
    args = ap.parse_args()
    load = lambda p: json.loads(Path(p).read_text()) if p else None  # noqa: E731
    balanced, quant = load(args.balanced), load(args.quantize)
    report = package(balanced, load(args.unbalanced), quant)
    rows = [seed_row(balanced, quant)]
    for pair in args.seed:
        prune_json, _, quant_json = pair.partition(":")
        rows.append(seed_row(load(prune_json), load(quant_json)))
    report["seeds"] = rows
    report["seed_summary"] = summarize(rows)
    if args.decoded:
        from ese.model.phone_loop import SWITCH_PENALTY
        sweeps = {}
        for item in args.decoded:
            kind, _, path = item.partition("=")
            if kind not in ("dense", "pruned", "quantized"):
                raise SystemExit(f"--decoded {item!r}: the kind must be dense, pruned or quantized")
            sweeps[kind] = load(path)
        report = decoded(report, sweeps, SWITCH_PENALTY)
    args.out.mkdir(parents=True, exist_ok=True)
    ship_model(args.qmodel, args.out / args.qmodel.name, args.checkpoint, args.corpus, args.cache_dir)
    write_json(args.out / "report.json", report)
    print(json.dumps({k: report[k] for k in ("density", "per_dense", "per_pruned", "per_quantized",
                                             "imbalance_max_over_mean")}, indent=1))


if __name__ == "__main__":
    main()
