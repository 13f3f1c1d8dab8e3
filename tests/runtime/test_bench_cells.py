"""``ese bench`` times each cell beside PyTorch's dense layer of that cell (rows carry ``cell``)."""

from __future__ import annotations

from runtime_models import tiny_qmodel

from ese.runtime.bench import Settings, cell_qmodel, markdown, run_rows


def test_gru_rows_are_timed_beside_nn_gru_and_tabled_apart():
    lstmp = tiny_qmodel(D=5, H=32, P=8, seed=2)
    gru = cell_qmodel("gru", lstmp, 0.3)
    assert gru.model.cell == "gru" and gru.model.hidden == 32 and gru.model.proj == 32
    st = Settings(steps=2, frames=3, repeats=1, min_round_s=0.001, settle_s=0.0, batches=(1, 3),
                  modes=("streaming",))
    emitted: set = set()
    rows = []
    for qm, label in ((lstmp, "tiny"), (gru, "random-gru")):
        rows += run_rows(qm, label, ("ese-float", "ese-fixed"), st, 1, emitted, lambda s: None)
    dense = {(r.cell, r.batch): r.kernel for r in rows if r.engine == "torch-dense"}
    assert dense == {("lstmp", 1): "torch-lstm-proj", ("lstmp", 3): "torch-lstm-proj",
                     ("gru", 1): "torch-gru", ("gru", 3): "torch-gru"}  # one nn.GRU row per group, not skipped
    ours = [r for r in rows if r.cell == "gru" and r.engine.startswith("ese-")]
    assert {(r.engine, r.batch) for r in ours} == {(e, b) for e in ("ese-float", "ese-fixed") for b in (1, 3)}
    assert all(r.us_per_step > 0 and r.speedup_vs_torch_dense > 0 for r in rows)
    from dataclasses import asdict
    md = markdown({"rows": [asdict(r) for r in rows], "machine": {"cpu": "x", "cores": 2, "numba": "", "torch": ""},
                   "peak_rss_bytes": 0})
    other = md.split("### Other cells")[1]
    assert "| gru | torch-dense | torch-gru |" in other and "| lstmp |" not in other
