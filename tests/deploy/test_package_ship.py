"""scripts/package_model.py ships self-contained model files (issue 14, item 5)."""

from __future__ import annotations


import numpy as np
import pytest
from deploy_models import strip_qmodel

from ese.artefact import ArtefactError, open_artefact
from ese.compress.qmodel import load_qmodel


def test_an_old_model_is_shipped_complete_with_the_same_weights(pm, tiny_models, tmp_path):
    old = strip_qmodel(tiny_models["qnpz"], tmp_path / "old.qnpz")
    with pytest.raises(ArtefactError, match="lacks the feature configuration"):
        pm.ship_model(old, tmp_path / "a.qnpz", None, None, None)
    filled = pm.ship_model(old, tmp_path / "shipped.qnpz", tiny_models["pt"], None, None)
    assert set(filled) == {"features", "normalisation"}
    assert not open_artefact(tmp_path / "shipped.qnpz").missing()
    a, b = load_qmodel(old), load_qmodel(tmp_path / "shipped.qnpz")
    assert all(np.array_equal(x.w_x, y.w_x) and np.array_equal(x.w_r, y.w_r) and np.array_equal(x.w_ym, y.w_ym)
               for x, y in zip(a.layers, b.layers))
    assert np.array_equal(a.w_out, b.w_out) and np.array_equal(a.b_out, b.b_out)


def test_a_complete_model_is_copied_as_it_is(pm, tiny_models, tmp_path):
    assert pm.ship_model(tiny_models["qnpz"], tmp_path / "m.qnpz", None, None, None) == {}
    assert (tmp_path / "m.qnpz").read_bytes() == tiny_models["qnpz"].read_bytes()
