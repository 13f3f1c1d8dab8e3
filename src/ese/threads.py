"""Thread counts of torch and numba, set for one block of work and restored after it.

Both libraries keep the count as process-wide (numba: per calling thread) state. Code that wants
its own count sets it here, for the ``with`` block only, so that nothing it calls or that runs
after it inherits a setting it did not ask for.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

# OpenMP's wait policy, read once when torch (or numba's OpenMP layer) loads libgomp. libgomp's
# default spins at every barrier; the LSTM's step is hundreds of small parallel regions, so when
# another process takes one of the cores the waiting thread spins while its partner is
# descheduled: measured 24x slower per training step beside one busy process (7.9 s vs 0.29 s,
# benchmarks/bench_busy_training.py). PASSIVE sleeps at barriers instead. A user's own setting
# (OMP_WAIT_POLICY=ACTIVE, or GOMP_SPINCOUNT) wins.
WAIT_POLICY_DEFAULT = "PASSIVE"


def set_openmp_defaults() -> bool:
    """Make PASSIVE the OpenMP wait policy unless the environment already chose; True if set.

    Effective only before torch is first imported (``ese/__init__`` calls it); later, the
    environment no longer reaches an OpenMP runtime that has already started.
    """
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return False
    os.environ["OMP_WAIT_POLICY"] = WAIT_POLICY_DEFAULT
    return True


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """PyTorch intra-op threads = ``n`` inside the block (0: leave the count as it is)."""
    import torch

    before = torch.get_num_threads()
    changed = bool(n) and n != before
    if changed:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if changed:
            torch.set_num_threads(before)


@contextmanager
def numba_threads(n: int) -> Iterator[None]:
    """numba parallel threads = ``n`` inside the block (0: leave the count as it is)."""
    import numba

    before = numba.get_num_threads()
    changed = bool(n) and n != before
    if changed:
        numba.set_num_threads(n)
    try:
        yield
    finally:
        if changed:
            numba.set_num_threads(before)
