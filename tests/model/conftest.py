"""Fixtures shared by the model tests."""

from __future__ import annotations

import pytest

from ese.data.dataset import FeatureSet

from toy_data import toy_featureset


@pytest.fixture(scope="module")
def toy_data() -> tuple[FeatureSet, FeatureSet]:
    """The toy task's train and dev sets (tests/toy_data.py)."""
    return toy_featureset("train", 40, seed=1), toy_featureset("dev", 12, seed=2)
