"""Synthesis with Debian's yosys (``synth_xilinx``): resources and logic depth of the RTL blocks.

Each block (one PE, one element-wise lane, a whole channel) is exported to Verilog by Amaranth
and synthesized for UltraScale (``-family xcu``, the paper's KU060 family) with ``-flatten``;
``stat`` gives the cells. The logic depth comes from a second, generic run (``synth -flatten;
abc -lut 6; ltp -noff``): the longest path in 6-input LUTs between flip-flops, a clock-rate proxy
(``ltp`` after ``synth_xilinx`` would walk through FDRE / LUTRAM / DSP cells, which it does not know
as sequential). There is no vendor timing or place-and-route here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from amaranth.back import verilog

from ese.rtl.errors import RtlError

LUT_CELLS = re.compile(r"^LUT[1-6]$")
FF_CELLS = re.compile(r"^FD[CPRSE]E?$")
LUTRAM_CELLS = re.compile(r"^RAM(32|64|128|256)[XM].*")
BRAM_CELLS = {"RAMB18E2": 0.5, "RAMB36E2": 1.0, "RAMB18E1": 0.5, "RAMB36E1": 1.0}
DSP_CELLS = ("DSP48E2", "DSP48E1")


def parse_stat(text: str) -> dict[str, Any]:
    """Cell counts from yosys ``stat`` output -> LUT / FF / LUTRAM / BRAM (36 kb) / DSP / CARRY."""
    cells: dict[str, int] = {}
    block = text[text.rfind("Number of cells"):] if "Number of cells" in text else text
    for name, count in re.findall(r"^\s+(\S+)\s+(\d+)\s*$", block, re.MULTILINE):
        cells[name] = cells.get(name, 0) + int(count)
    out = {"lut": sum(v for k, v in cells.items() if LUT_CELLS.match(k)),
           "ff": sum(v for k, v in cells.items() if FF_CELLS.match(k)),
           "lutram_cells": sum(v for k, v in cells.items() if LUTRAM_CELLS.match(k)),
           "bram36": sum(v * BRAM_CELLS[k] for k, v in cells.items() if k in BRAM_CELLS),
           "dsp": sum(v for k, v in cells.items() if k in DSP_CELLS),
           "carry": sum(v for k, v in cells.items() if k.startswith("CARRY")),
           "cells": cells}
    return out


def synth_elaboratable(block: Any, name: str, out_dir: Path, *, timeout: float = 1800,
                       depth: bool = True) -> dict[str, Any]:
    """Export ``block`` as ``name.v`` and synthesize it; returns resources, logic depth and runtime."""
    yosys = shutil.which("yosys")
    if yosys is None:
        raise RtlError("yosys is not installed (apt-get install yosys)")
    out_dir.mkdir(parents=True, exist_ok=True)
    src = out_dir / f"{name}.v"
    src.write_text(verilog.convert(block, name=name, emit_src=False))
    script = f"read_verilog {src.name}\nsynth_xilinx -family xcu -flatten -top {name}\ntee -o {name}.stat.txt stat\n"
    (out_dir / f"{name}.ys").write_text(script)
    t0 = time.perf_counter()
    proc = subprocess.run([yosys, "-q", "-s", f"{name}.ys"], cwd=out_dir, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if proc.returncode:
        raise RtlError(f"yosys failed on {name}: {(proc.stderr or proc.stdout)[-2000:]}")
    res = parse_stat((out_dir / f"{name}.stat.txt").read_text())
    res["yosys_seconds"] = round(time.perf_counter() - t0, 1)
    res["command"] = f"yosys -s {name}.ys  # {script.strip().replace(chr(10), '; ')}"
    if depth:
        res.update(logic_depth(name, out_dir, timeout=timeout))
    return res


def logic_depth(name: str, out_dir: Path, *, timeout: float = 1800) -> dict[str, Any]:
    """Longest register-to-register path of ``out_dir/name.v`` in 6-input LUT levels (generic mapping)."""
    script = (f"read_verilog {name}.v\nsynth -flatten -top {name}\nabc -lut 6\nopt_clean\n"
              f"tee -o {name}.ltp.txt ltp -noff\n")
    (out_dir / f"{name}.depth.ys").write_text(script)
    t0 = time.perf_counter()
    proc = subprocess.run([shutil.which("yosys") or "yosys", "-q", "-s", f"{name}.depth.ys"], cwd=out_dir,
                          capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode:
        raise RtlError(f"yosys (depth) failed on {name}: {(proc.stderr or proc.stdout)[-2000:]}")
    m = re.search(r"Longest topological path in \S+ \(length=(\d+)\)", (out_dir / f"{name}.ltp.txt").read_text())
    return {"longest_path_ltp": int(m.group(1)) if m else None, "depth_seconds": round(time.perf_counter() - t0, 1),
            "depth_command": f"yosys -s {name}.depth.ys  # {script.strip().replace(chr(10), '; ')}"}


def synth_report(params_by_pes: dict[int, Any], out_dir: Path, *, blocks: tuple[str, ...] = ("pe", "ew_lane", "channel"),
                 channel_pes: tuple[int, ...] | None = None, channel_depth: bool = False) -> dict[str, Any]:
    """Synthesize one PE and one lane (from the largest config) and a channel per PE count.

    The generic depth run is made for the PE and the lane, and for channels only with
    ``channel_depth`` (it maps every memory to flip-flops: slow on big channels).

    ``params_by_pes``: PE count -> :class:`~ese.rtl.params.RtlParams` of the same model shape.
    """
    from ese.rtl.channel import Channel
    from ese.rtl.lanes import LANES
    from ese.rtl.pe import PE

    biggest = params_by_pes[max(params_by_pes)]
    rows: dict[str, Any] = {}
    if "pe" in blocks:
        rows["pe"] = synth_elaboratable(PE(params=biggest, image=biggest.pe_images[0]), "ese_pe", out_dir)
    if "ew_lane" in blocks:
        lane = LANES[biggest.cell](params=biggest, image=biggest.lanes[0][0])  # the cell's element-wise lane
        rows["ew_lane"] = synth_elaboratable(lane, "ese_ew_lane", out_dir)
    if "channel" in blocks:
        for n in channel_pes or sorted(params_by_pes):
            rows[f"channel_{n}pe"] = synth_elaboratable(Channel(params=params_by_pes[n]), f"ese_channel_{n}pe", out_dir,
                                                        depth=channel_depth)
    return rows


def markdown_table(rows: dict[str, Any]) -> str:
    """The resource table (one line per block); '-' where the depth run was skipped."""
    head = ("| block | LUT | FF | LUTRAM cells | BRAM (36 kb) | DSP | logic depth (ltp, LUT6 levels) | yosys s |\n"
            "|---|---|---|---|---|---|---|---|\n")
    return head + "".join(f"| {k} | {r['lut']} | {r['ff']} | {r['lutram_cells']} | {r['bram36']:g} | {r['dsp']} | "
                          f"{r.get('longest_path_ltp', '-')} | {r['yosys_seconds']} |\n" for k, r in rows.items())
