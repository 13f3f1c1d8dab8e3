"""Cycles per frame of a GRU beside an LSTMP of the paper's shape on the cycle model (issue 18).

Both cells with 1024 units, 153 inputs, one layer (the LSTMP with its 512-row projection and
peepholes), random weights (nn init) pruned load-balance-aware to 11% over 32 PEs, quantized to
12/16 bits with ranges measured on random frames, compiled for 32 PEs and simulated at 200 MHz.
Prints one row per cell: cycles per frame, latency, utilisation, non-zeros and cycles per
non-zero, and the breakdown. Optionally also a stored model (``--qnpz``, e.g. the shipped paper
LSTMP) compiled the same way.

    PYTHONPATH=src python benchmarks/gru_cycles.py [--qnpz models/paper/paper-b32-d11-w12a16.qnpz]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from ese.accel.cycles import simulate
from ese.compiler.program import compile_qmodel
from ese.compress.prune import BalancedPruner, apply_masks
from ese.compress.qmodel import load_qmodel
from ese.compress.quantize import build_qmodel, measure_ranges
from ese.config import HardwareConfig, ModelConfig, QuantConfig
from ese.model.lstmp import AcousticModel


def random_pruned_qmodel(cell: str, density: float, pes: int, seed: int = 0):
    torch.manual_seed(seed)
    cfg = ModelConfig(input_dim=153, hidden=1024, proj=512, layers=1, cell=cell)
    model = AcousticModel(cfg).eval()
    apply_masks(model, BalancedPruner(density, pes, cell).compute_masks(model))
    rng = np.random.default_rng(seed)
    feats = [rng.normal(size=(40, 153)).astype(np.float32) for _ in range(2)]
    return build_qmodel(model, measure_ranges(model, feats), QuantConfig(), output_delay=0)


def row(name: str, qm, hw: HardwareConfig) -> dict:
    rep = simulate(compile_qmodel(qm, hw), n_frames=32)
    nnz = int(rep.nnz)
    cpf = float(rep.cycles_per_frame)
    return {"model": name, "cell": qm.model.cell, "hidden": qm.model.hidden, "nnz": nnz,
            "cycles_per_frame": round(cpf, 1), "latency_us": round(rep.latency_us, 2),
            "utilization": round(rep.utilization, 4), "cycles_per_nnz": round(cpf / nnz, 5),
            "nnz_per_cycle": round(nnz / cpf, 2),
            "breakdown": {k: round(float(v), 1) for k, v in rep.breakdown.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pes", type=int, default=32)
    ap.add_argument("--density", type=float, default=0.11)
    ap.add_argument("--qnpz", default=None, help="also a stored fixed-point model")
    args = ap.parse_args()
    hw = HardwareConfig(pes=args.pes, clock_mhz=200.0)
    rows = [row(f"random {c}", random_pruned_qmodel(c, args.density, args.pes), hw) for c in ("gru", "lstmp")]
    if args.qnpz:
        rows.append(row(args.qnpz, load_qmodel(args.qnpz), hw))
    for r in rows:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
