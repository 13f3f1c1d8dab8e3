"""The GRU (issue 18) through every stage that reads the cell description (``ese.cell.GRU``):
the float recurrence and calibration, quantization, the integer reference, the compiler and its
image, the functional model, the cycle model and load-balance-aware pruning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from random_models import random_input, random_qmodel

from ese.accel.cycles import simulate
from ese.accel.functional import FunctionalModel
from ese.accel.trace_io import first_difference
from ese.cell import GRU
from ese.compiler.image import ImageError, image_bytes, parse_image, read_header
from ese.compiler.program import compile_qmodel
from ese.compress.fixedpoint import dequantize
from ese.compress.prune import make_pruner, mask_stats, prunable_names
from ese.compress.quantize import build_qmodel, measure_ranges
from ese.compress.reference import ReferenceModel
from ese.config import HardwareConfig, ModelConfig, QuantConfig
from ese.model.lstmp import AcousticModel
from ese.partition import layer_partitions, matrix_partition


def _gru(seed: int = 0, **kw):
    args = dict(cell="gru", D=7, H=9, P=9, layers=2, density=0.5, seed=seed, peepholes=False)
    return random_qmodel(**{**args, **kw})


def test_the_description_keeps_the_candidates_recurrent_product_apart():
    assert GRU.acc_blocks == ("r", "z", "n_x", "n_h") and GRU.projection is None
    assert GRU.roles == ("x", "r", "ew")  # no output SpMV: y is h
    assert GRU.acc_rows("w_x", 2).tolist() == [0, 1, 2, 3, 4, 5]  # r, z, n_x
    assert GRU.acc_rows("w_r", 2).tolist() == [0, 1, 2, 3, 6, 7]  # r, z, n_h
    assert GRU.matrix_shape("w_r", 5, 5, 3) == (15, 5) and GRU.vector_shape("bias", 5) == (20,)


@pytest.mark.parametrize("pes", [1, 4, 11])
def test_reference_and_functional_model_agree_exactly(pes):
    qm = _gru(seed=pes)
    x = random_input(qm, 12, seed=pes)
    ref = ReferenceModel(qm).run(x)
    assert list(ref.layers[0]) == ["x", "acc", "z_r", "r", "z_z", "z", "z_hn", "z_n", "n", "h", "y"]
    assert ref.layers[0]["acc"].shape == (12, 36)  # four accumulator blocks per unit
    assert np.array_equal(ref.layers[0]["y"], ref.layers[0]["h"]) and np.abs(ref.y).sum() > 0
    assert np.abs(ref.y).max() <= 1 << 14  # |h| <= 1 in Q1.14
    prog = compile_qmodel(qm, HardwareConfig(pes=pes))
    assert [o.name for o in prog.schedule.ops] == ["x0", "r0", "ew0", "x1", "r1", "ew1"]
    fun = FunctionalModel(prog).run(x)
    assert first_difference(ref, fun, "reference", "functional") is None
    assert dict(fun.saturation) == dict(ref.saturation) and dict(fun.lut_clipped) == dict(ref.lut_clipped)


def test_the_image_says_which_cell():
    qm = _gru(seed=5)
    prog = compile_qmodel(qm, HardwareConfig(pes=4))
    data = image_bytes(prog)
    assert read_header(data)["version"] == 2
    back = parse_image(data)
    assert back.model.cell == "gru"
    x = random_input(qm, 6, seed=5)
    assert first_difference(ReferenceModel(qm).run(x), FunctionalModel(back).run(x), "reference", "image") is None
    lstmp = compile_qmodel(random_qmodel(seed=5), HardwareConfig(pes=4))
    assert read_header(image_bytes(lstmp))["version"] == 1  # an LSTMP image keeps its version-1 bytes
    forged = bytearray(data)
    forged[8:10] = (1).to_bytes(2, "little")  # a GRU claiming version 1 (checksum fixed below)
    import hashlib
    forged[-32:] = hashlib.sha256(bytes(forged[:-32])).digest()
    with pytest.raises(ImageError, match="version-1 image cannot hold a 'gru' model"):
        parse_image(bytes(forged))


def test_the_cycle_model_times_it_with_its_breakdown():
    qm = _gru(H=40, P=40, D=20)
    prog = compile_qmodel(qm, HardwareConfig(pes=4))
    rep = simulate(prog, n_frames=6)
    assert sum(rep.breakdown.values()) == rep.cycles_per_frame and 0 < rep.utilization <= 1
    assert set(rep.per_op_cycles) == {f"layer{k}.{m}" for k in range(2) for m in ("w_x", "w_r")}
    assert rep.breakdown["elementwise"] > 0  # y_t waits for the last unit to leave the element-wise unit
    slow = simulate(prog, HardwareConfig(pes=4, ew_lanes=1), n_frames=6)
    assert slow.breakdown["elementwise"] > rep.breakdown["elementwise"]


def test_fixed_point_follows_the_float_model():
    """Quantized from a float GRU (calibration on its own recurrence), the integer reference tracks
    the float model; h = y has the fixed format Q1.(A-2) and never saturates."""
    torch.manual_seed(0)
    cfg = ModelConfig(input_dim=6, hidden=10, layers=2, num_classes=5, cell="gru")
    model = AcousticModel(cfg).eval()
    feats = [np.random.default_rng(k).normal(size=(15, 6)).astype(np.float32) for k in range(3)]
    ranges = measure_ranges(model, feats)
    assert set(ranges[0]) == {"x", "acc", "z_r", "z_z", "z_hn", "z_n", "y"}
    qm = build_qmodel(model, ranges, QuantConfig(weight_bits=14), output_delay=0)
    assert all(L.formats["y"].frac == 14 for L in qm.layers)
    ref = ReferenceModel(qm)
    trace = ref.run(ref.quantize_input(feats[0]))
    assert sum(trace.saturation.values()) == 0
    with torch.no_grad():
        want = model.layers[1](model.layers[0](torch.from_numpy(feats[:1][0])[None])[0])[0][0].numpy()
    got = dequantize(trace.y, qm.layers[1].formats["y"].frac)
    assert np.abs(got - want).max() < 0.02


@pytest.mark.parametrize("balance", ["pes:4", "pes:3", "none", "rows:8"])
def test_every_balance_choice_prunes_a_gru(balance):
    torch.manual_seed(1)
    model = AcousticModel(ModelConfig(input_dim=6, hidden=12, layers=2, num_classes=5, cell="gru"))
    assert prunable_names(model) == ["layers.0.w_x", "layers.0.w_r", "layers.1.w_x", "layers.1.w_r"]
    masks = make_pruner(balance, 0.25, "gru").compute_masks(model)
    for name, m in masks.items():
        assert abs(int(m.sum()) - round(0.25 * m.numel())) <= 8
    if balance.startswith("pes:"):
        n = int(balance[4:])
        stats = mask_stats(masks, n, "gru")
        for name, m in masks.items():
            s = stats["matrices"][name]["nnz_per_pe"]
            assert s["max"] - s["min"] <= 1, (name, s)  # 12 units divide by 3 and 4: equal work


def test_a_units_three_gate_rows_and_its_n_h_row_sit_on_one_pe():
    cfg = ModelConfig(input_dim=5, hidden=7, layers=1, cell="gru")
    parts = layer_partitions(cfg, 3)
    assert list(parts) == ["w_x", "w_r"] and parts["w_r"].gate_blocks == 3
    for k in range(7):  # rows k, H + k, 2H + k of unit k: r, z and n (n_x in w_x, n_h in w_r)
        for name in ("w_x", "w_r"):
            assert {int(parts[name].pe_of_row[g * 7 + k]) for g in range(3)} == {k % 3}
    assert matrix_partition("layers.0.w_r", 21, 3, "gru").rows_per_pe.tolist() == [9, 6, 6]


def test_a_cell_without_an_onnx_entry_is_refused_by_onnx_export_in_one_line(tmp_path, monkeypatch):
    import dataclasses

    from ese.cell import CELLS, GRU
    from ese.errors import InteropError
    from ese.interop.export import export_model
    from ese.model.checkpoint import save_checkpoint
    # the GRU itself exports to ONNX (tests/interop/test_export.py); the CPU engine and the RTL run it
    # too (tests/runtime/test_engine_gru.py, tests/rtl/test_channel.py, test_ew_gru.py)
    model = AcousticModel(ModelConfig(input_dim=4, hidden=5, layers=1, num_classes=3, cell="gru"))
    save_checkpoint(tmp_path / "gru.pt", model)
    monkeypatch.setitem(CELLS, "gru", dataclasses.replace(GRU, foreign={"torch": GRU.foreign["torch"]}))
    with pytest.raises(InteropError, match="builds the LSTMP step; this model's cell is 'gru'"):
        export_model(tmp_path / "gru.pt", "onnx", tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()
