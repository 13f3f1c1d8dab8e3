"""The PE count is stated once: a model records the count its pruning balanced for, and compiling
it for another count works but is warned (one line) and reported (``balance`` in the JSON)."""

from __future__ import annotations

import json

from random_models import random_qmodel

from ese.compiler.program import balance_check, balance_warning, compile_qmodel
from ese.compiler.stats import compile_report
from ese.compress.prune import balanced_pes
from ese.compress.qmodel import save_qmodel
from ese.config import HardwareConfig


def test_pruned_checkpoints_record_their_balance():
    masks = {"layers.0.w_x": object()}
    assert balanced_pes({"masks": masks, "config": {"prune": {"balance": "pes:16"}}}) == 16
    assert balanced_pes({"masks": masks, "config": {"prune": {"balance": "none"}}}) is None
    assert balanced_pes({"masks": masks, "config": {"prune": {"balance": "rows:8"}}}) is None
    assert balanced_pes({"config": {"prune": {"balance": "pes:16"}}}) is None  # dense: no masks


def test_compiling_for_another_count_is_reported():
    qm = random_qmodel()
    qm.source = {"balanced_for_pes": 4}
    same = compile_report(compile_qmodel(qm, HardwareConfig(pes=4)))["balance"]
    assert same == {"balanced_for_pes": 4, "pes": 4, "matches": True} and balance_warning(same) is None
    other = compile_report(compile_qmodel(qm, HardwareConfig(pes=3)))["balance"]
    assert other == {"balanced_for_pes": 4, "pes": 3, "matches": False}
    assert "balanced for 4 PEs and is compiled for 3" in balance_warning(other)
    assert balance_check({}, 8)["matches"]  # unknown balance: nothing to warn about


def test_ese_compile_warns_once_and_writes_the_key(tmp_path):
    from typer.testing import CliRunner

    from ese.cli import app

    qm = random_qmodel()
    qm.source = {"balanced_for_pes": 4}
    save_qmodel(tmp_path / "m.qnpz", qm)
    res = CliRunner().invoke(app, ["compile", str(tmp_path / "m.qnpz"), "--pes", "2", "--out", str(tmp_path / "m.ese")])
    assert res.exit_code == 0, res.output
    assert res.output.count("warning: the model was load-balanced for 4 PEs") == 1
    report = json.loads((tmp_path / "m.json").read_text())
    assert report["balance"] == {"balanced_for_pes": 4, "pes": 2, "matches": False}
