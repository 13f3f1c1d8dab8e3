"""Hardware values the cycle model cannot mean are refused at once, in one line (issue 12,
items 3 and 4): an infinite clock divided by zero; 100 000 PEs ran for minutes and 6.8 GB."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time

import pytest
from accel_models import random_qmodel

from ese.accel.retarget import check_hardware
from ese.compiler.image import save_program
from ese.compiler.program import compile_qmodel
from ese.config import HardwareConfig
from ese.errors import ConfigError
from ese.partition import MAX_PES, partition_rows


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "m.ese"
    save_program(path, compile_qmodel(random_qmodel(D=10, H=16, P=8, density=0.3), HardwareConfig(pes=4)))
    return path


def _ese(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ese", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("flag,value,line", [
    ("--clock-mhz", "inf", "error: HardwareConfig.clock_mhz must be a finite number, not inf"),
    ("--clock-mhz", "nan", "error: HardwareConfig.clock_mhz must be a finite number, not nan"),
    ("--pes", "100000", f"error: HardwareConfig.pes 100000 is more than {MAX_PES}, the most this model of "
                        "the accelerator takes (128x the paper's 32 PEs)"),
])
def test_simulate_refuses_in_one_line(image, flag, value, line):
    t0 = time.perf_counter()
    proc = _ese("simulate", str(image), flag, value)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [line]
    assert time.perf_counter() - t0 < 60


def test_every_path_to_a_pe_count_is_bounded():
    with pytest.raises(ConfigError, match=rf"HardwareConfig\.pes {MAX_PES + 1} is more than {MAX_PES}"):
        compile_qmodel(random_qmodel(), HardwareConfig(pes=MAX_PES + 1))
    with pytest.raises(ConfigError, match=r"partition n_pes 5000 is more than"):
        partition_rows(64, 5000)
    assert len(partition_rows(8, MAX_PES).rows_of_pe) == MAX_PES  # the limit itself is allowed
    with pytest.raises(ConfigError, match=r"memory_gbytes_per_s must be a finite number, not inf"):
        check_hardware(dataclasses.replace(HardwareConfig(), memory_gbytes_per_s=float("inf")))
