"""Programs for other hardware settings, and loading a model file as a program.

Timing parameters (queue depth, clock, latencies, channels, ...) do not change the encoding: a
program is re-targeted by swapping its ``hardware`` and rebuilding the schedule (``overlap_input``
changes the issue order). ``pes`` and ``index_bits`` change the encoding itself, so the program is
decoded to its fixed-point model (exact) and compiled again.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from ese.accel.errors import AccelError
from ese.compiler.program import Program, compile_qmodel
from ese.compiler.schedule import build_schedule
from ese.config import HardwareConfig
from ese.errors import ConfigError
from ese.filekind import describe_file, model_kind_or_suffix
from ese.partition import check_pes

ENCODING_FIELDS = ("pes", "index_bits")


def check_hardware(hw: HardwareConfig) -> None:
    """Refuse timing parameters the cycle model cannot mean (ConfigError quoting the value)."""
    check_pes(hw.pes, "HardwareConfig.pes")
    for name in ("clock_mhz", "memory_gbytes_per_s"):  # inf passes "> 0" and then divides by zero
        if not math.isfinite(getattr(hw, name)):
            raise ConfigError(f"HardwareConfig.{name} must be a finite number, not {getattr(hw, name)!r}")
    rules = [("pes", hw.pes >= 1, "a positive integer"), ("index_bits", 1 <= hw.index_bits <= 16, "in [1, 16]"),
             ("channels", hw.channels >= 1, "at least 1"), ("clock_mhz", hw.clock_mhz > 0, "positive"),
             ("queue_depth", hw.queue_depth >= 1, "at least 1"),
             ("pointer_latency", hw.pointer_latency >= 0, "at least 0"),
             ("mac_latency", hw.mac_latency >= 0, "at least 0"),
             ("entries_per_cycle", hw.entries_per_cycle >= 1, "at least 1"),
             ("ew_lanes", hw.ew_lanes >= 0, "at least 0 (0 = one lane per PE)"),
             ("ew_latency", hw.ew_latency >= 0, "at least 0"), ("lut_latency", hw.lut_latency >= 0, "at least 0"),
             ("y_latency", hw.y_latency >= 0, "at least 0"),
             ("memory_gbytes_per_s", hw.memory_gbytes_per_s > 0, "positive")]
    for name, ok, expected in rules:
        if not ok:
            raise ConfigError(f"HardwareConfig.{name} must be {expected}, not {getattr(hw, name)!r}")


def retarget(program: Program, hardware: HardwareConfig) -> Program:
    """``program`` for ``hardware``: the same object if nothing changes, a re-scheduled copy for
    timing changes, a recompiled program (from the decoded fixed-point model) for pes/index_bits."""
    check_hardware(hardware)
    if hardware == program.hardware:
        return program
    if any(getattr(hardware, k) != getattr(program.hardware, k) for k in ENCODING_FIELDS):
        return compile_qmodel(program.to_qmodel(), hardware)
    out = dataclasses.replace(program, hardware=hardware, schedule=None)
    out.schedule = build_schedule(out)
    return out


def load_program(path: str | Path, hardware: HardwareConfig | None = None) -> Program:
    """A ``.ese`` program image, or a ``.qnpz`` fixed-point model compiled for ``hardware``;
    ``hardware`` then re-targets the program (see :func:`retarget`)."""
    path = Path(path)
    if not path.is_file():
        raise AccelError(f"model file {str(path)!r} does not exist")
    kind = model_kind_or_suffix(path)  # by content; the name only for a damaged file
    if kind == "qmodel":
        from ese.compress.qmodel import load_qmodel

        return compile_qmodel(load_qmodel(path), hardware or HardwareConfig())
    if kind == "image":
        try:
            from ese.compiler.image import load_program as load_image
        except ModuleNotFoundError as exc:
            if exc.name != "ese.compiler.image":
                raise
            raise AccelError(f"reading {str(path)!r} needs the program image reader (ese.compiler.image), "
                             "which this installation lacks; pass the .qnpz model instead") from None
        program = load_image(path)
        return program if hardware is None else retarget(program, hardware)
    what = "a float checkpoint (.pt): quantize it first" if kind == "checkpoint" else describe_file(path)
    raise AccelError(f"{str(path)!r} is neither a program image (.ese) nor a fixed-point model (.qnpz): "
                     f"it is {what}")
