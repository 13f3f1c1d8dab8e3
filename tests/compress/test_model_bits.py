"""model_bits: the paper's size count follows the index width the model is encoded with."""

from __future__ import annotations

import pytest
from random_models import random_qmodel

from ese.compress.quantize import model_bits
from ese.config import HardwareConfig


@pytest.mark.parametrize("index_bits", [2, 4, 6])
def test_each_nonzero_counts_its_weight_and_its_index(index_bits):
    qm = random_qmodel(seed=3, H=8, P=6, density=0.3)
    mb = model_bits(qm, index_bits=index_bits)
    nnz = sum(qm.nnz().values())
    assert mb["index_bits"] == index_bits
    assert mb["matrix_bits"] == nnz * (qm.quant.weight_bits + index_bits)
    assert mb["total_bits"] == mb["matrix_bits"] + mb["vector_bits"]


def test_the_default_index_width_is_the_configs():
    qm = random_qmodel(seed=3)
    assert model_bits(qm) == model_bits(qm, index_bits=HardwareConfig().index_bits)
