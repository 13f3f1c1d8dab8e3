"""Speed of the accelerator models themselves: simulated frames per second of the cycle model
(with and without the term-by-term breakdown) and of the functional model, on the paper-preset
model, beside the integer reference model measured in the same run.

    .venv/bin/python benchmarks/bench_accel.py [--frames 200] [--model models/paper/paper-b32-d11-w12a16.qnpz]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ese.accel.cycles import simulate
from ese.accel.functional import FunctionalModel
from ese.compiler.program import compile_qmodel
from ese.compress.qmodel import load_qmodel
from ese.compress.reference import ReferenceModel
from ese.config import HardwareConfig
from ese.report.tables import print_table


def _best_of(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=Path("models/paper/paper-b32-d11-w12a16.qnpz"))
    ap.add_argument("--frames", type=int, default=200)
    args = ap.parse_args()
    qm = load_qmodel(args.model)
    program = compile_qmodel(qm, HardwareConfig())
    T = args.frames
    ref = ReferenceModel(qm)
    x = ref.quantize_input(np.cumsum(np.random.default_rng(0).normal(scale=0.3, size=(T, qm.model.input_dim)), axis=0))
    fm = FunctionalModel(program)
    simulate(program, n_frames=2)  # numba compilation (cached on disk after the first run)
    fm.run(x[:2])
    rows = []
    for name, fn in (("cycle model + breakdown", lambda: simulate(program, n_frames=T)),
                     ("cycle model, total only", lambda: simulate(program, n_frames=T, breakdown=False)),
                     ("functional model (full trace)", lambda: fm.run(x)),
                     ("integer reference model (full trace)", lambda: ref.run(x))):
        s = _best_of(fn)
        rows.append([name, T, 1000 * s, T / s])
    print_table(f"accelerator models on {args.model.name} (32 PEs), best of 3",
                ["model", "frames", "ms", "frames/s"], rows)


if __name__ == "__main__":
    main()
