"""Thread counts of torch and numba, set for one block of work and restored after it.

Both libraries keep the count as process-wide (numba: per calling thread) state. Code that wants
its own count sets it here, for the ``with`` block only, so that nothing it calls or that runs
after it inherits a setting it did not ask for.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


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
