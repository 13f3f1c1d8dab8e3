"""One numba thread by default: the tests check results, and a shared machine makes every
parallel-region launch wait for a descheduled worker (test_threads.py covers 2 threads)."""

import numba
import pytest


@pytest.fixture(autouse=True)
def _one_thread():
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(before)
