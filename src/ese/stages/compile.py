"""The compile stage: a fixed-point model file -> a program image and its compile report, with
the one warning line when the model's PE balance differs from the hardware's (``ese compile``
and ``ese run``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ese.compiler.image import save_program
from ese.compiler.program import Program, balance_warning, compile_qmodel
from ese.compiler.stats import compile_report
from ese.compress.qmodel import load_qmodel
from ese.config import HardwareConfig


def compile_file(qmodel_path: str | Path, hardware: HardwareConfig, image_path: str | Path
                 ) -> tuple[Program, dict[str, Any], str | None]:
    """Compile ``qmodel_path`` for ``hardware`` into ``image_path``; (program, report, the PE
    balance warning or None). The report is :func:`~ese.compiler.stats.compile_report`'s with
    ``image`` (the image path) added."""
    program = compile_qmodel(load_qmodel(qmodel_path), hardware)
    size = save_program(image_path, program)
    report = compile_report(program, size)
    report["image"] = str(image_path)
    return program, report, balance_warning(report["balance"])
