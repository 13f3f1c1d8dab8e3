"""The shipped paper-preset model compiles at 8, 16, 32 and 64 PEs, decodes exactly, and an SpMV
computed straight from the image's entries equals the integer reference model's products."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ese.compiler.image import image_bytes, parse_image
from ese.compiler.program import compile_qmodel
from ese.compiler.stats import compile_report
from ese.compress.fixedpoint import align, saturate
from ese.compress.qmodel import load_qmodel, sum_frac
from ese.compress.reference import ReferenceModel
from ese.config import HardwareConfig

PAPER_QNPZ = Path(__file__).resolve().parents[2] / "models/paper/paper-b32-d11-w12a16.qnpz"


@pytest.fixture(scope="module")
def qm():
    return load_qmodel(PAPER_QNPZ)


@pytest.mark.parametrize("pes", [8, 16, 32, 64])
def test_compiles_and_round_trips_exactly(qm, pes):
    program = parse_image(image_bytes(compile_qmodel(qm, HardwareConfig(pes=pes))))
    back = program.to_qmodel()
    for name in ("w_x", "w_r", "w_ym"):
        np.testing.assert_array_equal(getattr(back.layers[0], name), getattr(qm.layers[0], name), err_msg=name)
    report = compile_report(program)
    nnz = sum(int(np.count_nonzero(getattr(qm.layers[0], n))) for n in ("w_x", "w_r", "w_ym"))
    assert report["nnz"] == nnz
    # pruned balanced for 32 PEs (+-1 per PE), and fewer PEs that each merge 32 / pes of them stay
    # balanced; quantization may round a few tiny kept weights to zero (6 of 230 687 in w_r of the
    # shipped model), so the compiled counts are held to the paper's measure, max / mean
    if 32 % pes == 0:
        for name, spread in report["nnz_per_pe"].items():
            assert spread["max"] - spread["min"] <= 32 // pes + 2, name
            assert spread["max_over_mean"] <= 1.001, name
    assert 8 < report["compression_ratio"] < 32 / 1.0
    assert report["bits_per_nonzero"] > 16  # entries are 16 bits; padding and pointers add to that


def test_spmv_from_the_image_equals_the_reference_products(qm):
    program = compile_qmodel(qm, HardwareConfig(pes=32))
    ref = ReferenceModel(qm)
    rng = np.random.default_rng(0)
    x = ref.quantize_input(rng.normal(size=(4, qm.model.input_dim)))
    trace = ref.run(x)
    L, f = program.layers[0], qm.layers[0].formats
    frac = {k: v.frac for k, v in f.items()}
    f_sum = sum_frac(frac)
    y_prev = np.zeros(qm.model.proj, dtype=np.int64)
    for t in range(len(x)):
        exact = (align(L.w_x.spmv(x[t]), frac["w_x"] + frac["x"], f_sum)
                 + align(L.w_r.spmv(y_prev), frac["w_r"] + frac["y"], f_sum) + align(L.bias, frac["bias"], f_sum))
        acc = saturate(align(exact, f_sum, frac["acc"]), qm.quant.acc_bits)
        np.testing.assert_array_equal(acc, trace.layers[0]["acc"][t], err_msg=f"acc at step {t}")
        acc_y = saturate(align(L.w_ym.spmv(trace.layers[0]["m"][t]), frac["w_ym"] + frac["m"], frac["acc_y"]),
                         qm.quant.acc_bits)
        np.testing.assert_array_equal(acc_y, trace.layers[0]["acc_y"][t], err_msg=f"acc_y at step {t}")
        y_prev = trace.layers[0]["y"][t]
