"""Per cell, our engine against PyTorch's dense layer of that cell over several ``ese bench
--json`` runs (issue 18): µs per step in every run, the speed-up measured side by side in every
run and the worst of them, and the 1-minute load average of each run.

    .venv/bin/python benchmarks/bench_cells.py run1.json run2.json run3.json [--cell gru]

Rows: ``ese-float`` and ``ese-fixed`` on each cell's model at the main thread count (the shipped
LSTMP, and the random GRU of the same shape that ``ese bench`` builds), streaming and utterance,
every batch; PyTorch dense of the same cell, mode and batch is the base of each run's speed-up.
"""

from __future__ import annotations

import argparse
import json


def _key(r: dict) -> tuple:
    return r.get("cell", "lstmp"), r["engine"], r["mode"], r["batch"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--cell", default=None, help="only this cell's rows")
    args = ap.parse_args()
    runs = [json.load(open(p, encoding="utf-8"))["rows"] for p in args.runs]
    threads = runs[0][0]["threads"]
    main_model = {r.get("cell", "lstmp"): r["model"] for r in reversed(runs[0])
                  if r["engine"] in ("ese-float", "ese-fixed") and r["threads"] == threads}
    n = len(runs)
    print(f"| cell | engine | kernel | mode | batch | µs/step, runs 1–{n} | PyTorch dense µs/step | "
          f"× side by side, runs 1–{n} | worst × | load |")
    print("|" + "---|" * 10)
    for (cell, engine, mode, batch) in sorted({_key(r) for r in runs[0]}):
        if engine not in ("ese-float", "ese-fixed") or (args.cell and cell != args.cell):
            continue
        ours, dense = [], []
        for rows in runs:
            sel = [r for r in rows if _key(r) == (cell, engine, mode, batch) and r["threads"] == threads
                   and r["model"] == main_model.get(cell)]
            base = [r for r in rows if _key(r) == (cell, "torch-dense", mode, batch) and r["threads"] == threads]
            if sel and base:
                ours.append(sel[0])
                dense.append(base[0])
        if not ours:
            continue
        x = [d["us_per_step"] / o["us_per_step"] for o, d in zip(ours, dense)]
        print(f"| {cell} | {engine} | {ours[0]['kernel']} | {mode} | {batch} "
              f"| {' / '.join('%.0f' % o['us_per_step'] for o in ours)} "
              f"| {' / '.join('%.0f' % d['us_per_step'] for d in dense)} "
              f"| {' / '.join('%.2f' % v for v in x)} | **{min(x):.2f}** "
              f"| {' / '.join('%.1f' % o['load_avg'] for o in ours)} |")


if __name__ == "__main__":
    main()
