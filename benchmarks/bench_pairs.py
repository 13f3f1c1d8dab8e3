"""The fixed-point many-stream kernels side by side (issue 16): the int64 row x batch kernel
(``csr-rows-x-batch-i64``) against the int16 pair kernel (``csr-pairs-x-batch-i16``), same model,
same process, rounds alternated so a noisy host slows both alike.

    .venv/bin/python benchmarks/bench_pairs.py [--model models/paper/paper-b32-d11-w12a16.qnpz]
                                               [--streams 32] [--threads 2 1]

Per thread count and mode (streaming: ``step_layers`` per step; utterance: ``run_frames`` over
50 frames) it prints the fastest and the median of 7 rounds of 0.25 s, in µs per step.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import ese.runtime.engine as engine_mod
from ese.runtime import Engine
from ese.runtime.bench import DEFAULT_MODEL

FRAMES = 50


def _round(fn, seconds: float = 0.25) -> float:
    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < seconds:
        fn(n)
        n += 1
    return (time.perf_counter() - t0) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument("--streams", type=int, default=32)
    ap.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    args = ap.parse_args()
    B = args.streams
    rng = np.random.default_rng(0)
    for threads in args.threads:
        recs = {}
        for pairs in (False, True):
            engine_mod.PAIR_KERNELS = pairs
            eng = Engine.load(args.model, threads=threads)
            rec = eng.recognizer(B)
            recs[rec.kernel] = rec
        engine_mod.PAIR_KERNELS = True
        fmt = eng.qmodel.input_format
        xs = [rng.integers(fmt.lo, fmt.hi + 1, size=(B, eng.input_dim)) for _ in range(8)]
        X = rng.integers(fmt.lo, fmt.hi + 1, size=(FRAMES, B, eng.input_dim))
        times: dict[tuple[str, str], list[float]] = {}
        for rec in recs.values():
            rec.run_frames(X[:2])  # compile and warm
        for _ in range(7):
            for name, rec in recs.items():
                times.setdefault((name, "streaming"), []).append(_round(lambda n: rec.step_layers(xs[n % 8])))
                times.setdefault((name, "utterance"), []).append(_round(lambda n: rec.run_frames(X)) / FRAMES)
        for (name, mode), t in times.items():
            print(f"threads {threads}  {mode:9s}  {name:24s}  fastest {min(t):6.0f}  median {np.median(t):6.0f} µs/step")


if __name__ == "__main__":
    main()
