"""Feature extraction speed: real-time factor of each step (fbank, deltas, CMVN) on 60 s of audio.

Run: python benchmarks/bench_features.py [--seconds 60] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from ese.config import FeatureConfig
from ese.data import features as F
from ese.report.tables import print_table


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    cfg = FeatureConfig()
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(int(args.seconds * cfg.sample_rate))).astype(np.float32)
    static = F.fbank(audio, cfg)
    with_deltas = F.add_deltas(static, cfg.delta_order, cfg.delta_window)
    steps = {
        "fbank (kaldi-native-fbank)": lambda: F.fbank(audio, cfg),
        "deltas + delta-deltas": lambda: F.add_deltas(static, cfg.delta_order, cfg.delta_window),
        "CMVN (per speaker)": lambda: F.apply_cmvn([with_deltas], ["s"], "speaker"),
    }
    rows = []
    total = 0.0
    for name, fn in steps.items():
        t = median_time(fn, args.repeats)
        total += t
        rows.append([name, t * 1000, t / args.seconds, args.seconds / t])
    rows.append(["total", total * 1000, total / args.seconds, args.seconds / total])
    print_table(f"feature extraction on {args.seconds:.0f} s of audio ({cfg.dim} dims)",
                ["step", "ms", "real-time factor", "x real time"], rows)


if __name__ == "__main__":
    main()
