"""ese.threads: a thread count holds inside its block and is restored after, also on errors."""

from __future__ import annotations

import numba
import pytest
import torch

from ese.threads import numba_threads, torch_threads


def test_torch_threads_are_restored():
    before = torch.get_num_threads()
    want = 1 if before != 1 else 2
    with torch_threads(want):
        assert torch.get_num_threads() == want
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError):
        with torch_threads(want):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before


def test_zero_leaves_the_count_alone():
    before_t, before_n = torch.get_num_threads(), numba.get_num_threads()
    with torch_threads(0), numba_threads(0):
        assert (torch.get_num_threads(), numba.get_num_threads()) == (before_t, before_n)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="one core")
def test_numba_threads_are_restored():
    before = numba.get_num_threads()
    want = 1 if before != 1 else 2
    with numba_threads(want):
        assert numba.get_num_threads() == want
    assert numba.get_num_threads() == before
