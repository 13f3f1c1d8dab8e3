"""An imported nn.LSTM (or nn.GRU) goes through ese prune -> quantize -> compile -> simulate like our own."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from ese.compress.qmodel import load_qmodel


def _ese(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ese", *args], capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_imported_model_prunes_quantizes_compiles_and_simulates(tone_corpus, tmp_path, cell):
    torch.manual_seed(0)
    if cell == "lstm":
        lstm, fc = nn.LSTM(153, 16, num_layers=2, proj_size=8, batch_first=True), nn.Linear(8, 48)
    else:
        lstm, fc = nn.GRU(153, 16, num_layers=2, batch_first=True), nn.Linear(16, 48)
    state = {**{f"rnn.{k}": v for k, v in lstm.state_dict().items()}, **{f"head.{k}": v for k, v in fc.state_dict().items()}}
    torch.save(state, tmp_path / "theirs.pt")

    ck = tmp_path / "imported.pt"
    # the tiny preset's pruning and hardware (4 PEs); its default 153-dim features
    res = _ese("import", str(tmp_path / "theirs.pt"), "--out", str(ck), "--preset", "tiny")
    assert res.returncode == 0, res.stderr
    res = _ese("prune", str(ck), "--corpus", str(tone_corpus), "--out", str(tmp_path / "pruned.pt"),
               "--density", "0.25", "--steps", "0.5", "--retrain-epochs", "1", "--balance", "pes:4",
               "--quiet", "--cache-dir", str(tmp_path / "features"), "--json", str(tmp_path / "prune.json"))
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "prune.json").read_text())["density"] == pytest.approx(0.25, abs=0.01)
    res = _ese("quantize", str(tmp_path / "pruned.pt"), "--corpus", str(tone_corpus), "--out",
               str(tmp_path / "m.qnpz"), "--sweep", "", "--quiet", "--cache-dir", str(tmp_path / "features"))
    assert res.returncode == 0, res.stderr
    qm = load_qmodel(tmp_path / "m.qnpz")
    assert len(qm.layers) == 2 and getattr(qm.layers[0], "peephole", None) is None
    mats = [m for m in ("w_x", "w_r", "w_ym") if getattr(qm.layers[0], m, None) is not None]
    nnz = sum(int(np.count_nonzero(getattr(layer, m))) for layer in qm.layers for m in mats)
    total = sum(getattr(layer, m).size for layer in qm.layers for m in mats)
    assert nnz <= 0.26 * total
    res = _ese("compile", str(tmp_path / "m.qnpz"), "--pes", "4", "--out", str(tmp_path / "m.ese"))
    assert res.returncode == 0, res.stderr
    res = _ese("simulate", str(tmp_path / "m.ese"), "--json", str(tmp_path / "sim.json"))
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "sim.json").read_text())["cycles_per_frame"] > 0
