"""``ese run --preset tiny --set model.cell=gru --rtl``: every stage runs a GRU (issue 18)."""

import json

import numpy as np
import pytest

from ese.accel.functional import FunctionalModel
from ese.accel.trace_io import first_difference
from ese.compiler.image import load_program, read_header
from ese.compress.reference import ReferenceModel
from ese.config import Config
from ese.pipeline import run

pytestmark = pytest.mark.slow  # the tiny preset end to end


def test_the_tiny_pipeline_runs_a_gru(tone_corpus, tmp_path):
    cfg = Config.load(preset="tiny", overrides=["model.cell=gru", "train.epochs=6"])
    report = run(cfg, tmp_path, corpus=tone_corpus, progress=False, rtl_frames=2)
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert on_disk["config"]["model"]["cell"] == "gru" and on_disk["config"]["model"]["proj"] == cfg.model.hidden
    per = report["compression"]["per"]["test"]
    assert report["per"]["test"]["frame_acc"] > 50 and all(0 <= per[k] < 100 for k in ("dense", "pruned", "quantized"))
    assert report["prune"]["imbalance_max_over_mean"] < 1.01  # load-balance-aware over the tiny preset's 4 PEs
    data = (tmp_path / "model.ese").read_bytes()
    assert read_header(data)["version"] == 2
    prog = load_program(tmp_path / "model.ese")
    assert prog.model.cell == "gru" and list(prog.layers[0].matrices()) == ["w_x", "w_r"]
    sim = on_disk["simulate"]
    assert sum(sim["breakdown"].values()) == pytest.approx(sim["cycles_per_frame"])
    qm = prog.to_qmodel()
    x = np.random.default_rng(0).integers(-2000, 2000, size=(8, qm.model.input_dim))
    assert first_difference(ReferenceModel(qm).run(x), FunctionalModel(prog).run(x), "reference", "image") is None
    rtl = on_disk["rtl"]  # the RTL of that image on two test frames: bit- and cycle-exact
    assert rtl["frames"] == 2 and rtl["match"] and rtl["cycles_match"] and rtl["columns_match"]
