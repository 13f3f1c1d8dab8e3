"""The accelerator models take a program image (.ese): same results as the compiled model, and a
corrupted image is refused before anything runs."""

from __future__ import annotations

import pytest
from accel_models import random_input, random_qmodel

from ese.accel.cycles import simulate
from ese.accel.functional import FunctionalModel
from ese.accel.retarget import load_program
from ese.accel.trace_io import assert_traces_equal
from ese.compiler.program import compile_qmodel
from ese.config import HardwareConfig
from ese.errors import EseError

image = pytest.importorskip("ese.compiler.image")


def test_image_runs_like_the_compiled_program(tmp_path):
    qm = random_qmodel(D=8, H=24, P=8, layers=2, density=0.3, seed=9)
    prog = compile_qmodel(qm, HardwareConfig(pes=4, index_bits=3))
    image.save_program(tmp_path / "m.ese", prog)
    loaded = load_program(tmp_path / "m.ese")
    x = random_input(qm, 4)
    assert_traces_equal(FunctionalModel(loaded).run(x), FunctionalModel(prog).run(x), "image", "compiled")
    assert simulate(loaded, n_frames=5).breakdown == simulate(prog, n_frames=5).breakdown


def test_corrupted_image_is_refused(tmp_path):
    prog = compile_qmodel(random_qmodel(seed=3), HardwareConfig(pes=2))
    path = tmp_path / "m.ese"
    image.save_program(path, prog)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(EseError):
        load_program(path)
