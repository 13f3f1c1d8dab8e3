"""The GRU in the RTL by hand (docs/gru.md "In the RTL", docs/hardware.md "The GRU's PE and lane").

``--sim``: the paper-size GRU of ``gru_cycles.py`` (1024 units, 153 inputs, random weights pruned
balanced to 11% over 32 PEs, 12/16 bits) in amaranth.sim on ``--frames`` random frames against the
integer reference and the cycle model (minutes). ``--synth GRU_MODEL``: yosys of one PE and one
element-wise lane of that GRU model and of the shipped LSTMP, both cut to 64 cells and 32 inputs,
at 32 PEs (needs yosys).

    PYTHONPATH=src python benchmarks/rtl_gru.py --sim [--frames 2]
    PYTHONPATH=src python benchmarks/rtl_gru.py --synth runs/gru-default/model.ese [--out build/rtl/synth_gru]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from gru_cycles import random_pruned_qmodel

from ese.compiler.image import load_program
from ese.compiler.program import compile_qmodel
from ese.compress.qmodel import load_qmodel
from ese.config import HardwareConfig
from ese.rtl.check import rtl_check
from ese.rtl.params import rtl_params
from ese.rtl.synth import markdown_table, synth_report
from ese.rtl.toy import crop_qmodel, random_frames

SHIPPED = Path(__file__).resolve().parents[1] / "models" / "paper" / "paper-b32-d11-w12a16.qnpz"


def sim(frames: int) -> dict:
    t0 = time.perf_counter()
    qm = random_pruned_qmodel("gru", 0.11, 32)
    res = rtl_check(compile_qmodel(qm, HardwareConfig(pes=32, clock_mhz=200.0)), random_frames(qm, frames, 0))
    return {**res, "wall_s": round(time.perf_counter() - t0, 1)}


def synth(gru_model: Path, out: Path) -> str:
    gru = load_program(gru_model).to_qmodel() if gru_model.suffix == ".ese" else load_qmodel(gru_model)
    rows = {}
    for name, qm in (("lstmp", crop_qmodel(load_qmodel(SHIPPED), hidden=64, proj=32, input_dim=32)),
                     ("gru", crop_qmodel(gru, hidden=64, proj=64, input_dim=32))):
        params = rtl_params(compile_qmodel(qm, HardwareConfig(pes=32)), max_frames=16)
        rows.update({f"{name}_{k}": v for k, v in synth_report({32: params}, out / name, blocks=("pe", "ew_lane")).items()})
    return markdown_table(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sim", action="store_true")
    ap.add_argument("--frames", type=int, default=2)
    ap.add_argument("--synth", type=Path, default=None, help="a GRU model (.ese or .qnpz)")
    ap.add_argument("--out", type=Path, default=Path("build/rtl/synth_gru"))
    args = ap.parse_args()
    if args.sim:
        print(json.dumps(sim(args.frames)))
    if args.synth:
        print(synth(args.synth, args.out))


if __name__ == "__main__":
    main()
