"""Data-parallel training throughput: frames/s of ``ese.model.train`` at 1 and 2 processes.

Each configuration trains the default preset's model (256 cells, projection 128, 2 layers) for one
epoch on the first ``--utterances`` training utterances of a corpus (dev: 4 utterances, so the
epoch is almost all training), started the way a user starts it (``torchrun --standalone
--nproc-per-node N``), and reports the training frames divided by the epoch's wall time:

- 1 process x 1 thread, 1 process x 2 threads (torch's own parallelism), 2 processes x 1 thread
  (data parallel over gloo: every step sums the gradients of both ranks).

The *worst* of ``--repeats`` runs is reported after one warm-up run (the machine is shared).
On a 2-core machine 2 processes cannot beat 1 process x 2 threads by much: this measures the
overhead of the all-reduce and of two Python processes, not a speed-up; the speed-up is for
machines with more cores per job than one process can use, and for several machines.

Run: ``python benchmarks/bench_ddp.py --corpus runs/default/corpus --cache-dir runs/default/features``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CONFIGS = ((1, 1), (1, 2), (2, 1))  # (processes, threads per process)


def worker(args: argparse.Namespace) -> None:
    import dataclasses

    from ese import distributed
    from ese.config import Config
    from ese.data.dataset import FeatureSet
    from ese.data.store import load_split
    from ese.model.train import train_model

    cfg = Config.load(preset="default")
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=1, threads=args.threads))
    train = load_split(args.corpus, "train", cfg.features, cache_dir=args.cache_dir, progress=False)
    dev = load_split(args.corpus, "dev", cfg.features, cache_dir=args.cache_dir, progress=False)
    train = FeatureSet(train.name, train.utterances[:args.utterances])
    dev = FeatureSet(dev.name, dev.utterances[:4])
    with tempfile.TemporaryDirectory() as tmp:
        res = train_model(cfg, train, dev, Path(tmp) / "m.pt", progress=False)
    if distributed.is_main():
        seconds = res.history[0]["seconds"]
        Path(args.result).write_text(json.dumps({"frames": train.num_frames, "seconds": seconds}))


def run_config(args: argparse.Namespace, procs: int, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "r.json"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(procs),
               __file__, "--worker", "--corpus", str(args.corpus), "--cache-dir", str(args.cache_dir),
               "--utterances", str(args.utterances), "--threads", str(threads), "--result", str(result)]
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return json.loads(result.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--cache-dir", type=Path, required=True)
    ap.add_argument("--utterances", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--worker", action="store_true")
    ap.add_argument("--result", type=Path)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"training frames/s, default model, {args.utterances} train utterances, "
                        f"worst of {args.repeats} (os.cpu_count() = {os.cpu_count()})")
    for col in ("processes", "threads each", "frames", "worst s", "frames/s", "vs 1x1"):
        table.add_column(col, justify="right")
    base = None
    for procs, threads in CONFIGS:
        run_config(args, procs, threads)  # warm-up
        runs = [run_config(args, procs, threads) for _ in range(args.repeats)]
        worst = max(r["seconds"] for r in runs)
        fps = runs[0]["frames"] / worst
        base = base or fps
        table.add_row(str(procs), str(threads), str(runs[0]["frames"]), f"{worst:.1f}", f"{fps:.0f}",
                      f"{fps / base:.2f}x")
    Console().print(table)


if __name__ == "__main__":
    main()
