"""Thread counts of torch and numba: set for one block of work and restored after it, and chosen
automatically from the machine's present load.

Both libraries keep the count as process-wide (numba: per calling thread) state. Code that wants
its own count sets it here, for the ``with`` block only, so that nothing it calls or that runs
after it inherits a setting it did not ask for. A count of 0 in a configuration means "choose":
:func:`auto_threads` counts the cores other processes leave free (docs/threads.md says why a
core in doubt is left to them).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


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


class numba_threads:
    """numba parallel threads = ``n`` inside the ``with`` block (0: leave the count as it is).

    A small class rather than a generator around numba's Python API: the engine enters it on
    every streaming step, and ``numba.get_num_threads()`` takes a lock each call (the generator
    form cost 1.5 µs a block, about 5 % of a 30 µs step; this one 0.6).
    """

    __slots__ = ("n", "before")

    def __init__(self, n: int) -> None:
        self.n, self.before = n, 0

    def __enter__(self) -> None:
        if self.n:
            get, put, limit = _numba_count()
            if not 1 <= self.n <= limit:
                raise ValueError(f"numba can run 1 to {limit} threads here, not {self.n}")
            self.before = get()
            put(self.n)

    def __exit__(self, *exc) -> None:
        if self.n and self.before != self.n:
            _numba_count()[1](self.before)


_COUNT: list = []  # (get, set, limit), found on first use: importing this module does not import numba


def _numba_count():
    """numba's thread-count getter and setter of the calling thread, and its limit: the threading
    layer's own calls where this numba has them (no lock; the threads are launched here once),
    else the public API."""
    if not _COUNT:
        import numba

        numba.get_num_threads()  # launches numba's threads
        try:
            from numba.np.ufunc import parallel

            get, put = parallel._get_num_threads, parallel._set_num_threads
        except (ImportError, AttributeError):
            get, put = numba.get_num_threads, numba.set_num_threads
        _COUNT.append((get, put, numba.config.NUMBA_NUM_THREADS))
    return _COUNT[0]


# --- the automatic count: the cores other processes leave free ---------------------------------

SAMPLE_S = 0.25  # how long /proc/stat is watched
BUSY_SHARE = 0.25  # a core counts as taken when other processes use more than this share of one
_CACHE_S = 5.0  # a reading is reused this long (engines made one after another sample once)
_cache: dict[str, tuple[float, tuple[float, str]]] = {}


@dataclass(frozen=True)
class ThreadChoice:
    """A thread count and why it was chosen (one line for people)."""

    count: int
    reason: str
    automatic: bool = False


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _cpu_ticks(text: str, cpus: set[int]) -> tuple[int, int]:
    """(busy, total) jiffies summed over the ``cpuN`` lines of /proc/stat whose N is in ``cpus``."""
    busy = total = 0
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        if not (name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus):
            continue
        f = [int(v) for v in rest.split()[:8]]  # user nice system idle iowait irq softirq steal
        f += [0] * (8 - len(f))
        total += sum(f)
        busy += sum(f) - f[3] - f[4]
    return busy, total


def busy_from_stat(before: str, after: str, cpus: set[int], own_cpu_s: float,
                   ticks_per_s: float) -> float:
    """Cores kept busy by other processes between two /proc/stat texts: the busy jiffies of
    ``cpus`` over one core's elapsed jiffies, less this process's own CPU seconds."""
    b0, t0 = _cpu_ticks(before, cpus)
    b1, t1 = _cpu_ticks(after, cpus)
    per_core = (t1 - t0) / max(1, len(cpus))  # elapsed jiffies of one core
    if per_core <= 0:
        return 0.0
    return max(0.0, (b1 - b0 - own_cpu_s * ticks_per_s) / per_core)


def _sample(interval: float) -> tuple[float, str]:
    try:
        cpus = set(os.sched_getaffinity(0))
        with open("/proc/stat", encoding="ascii") as f:
            before = f.read()
        own0, t0 = os.times(), time.monotonic()
        time.sleep(interval)
        with open("/proc/stat", encoding="ascii") as f:
            after = f.read()
        own1, dt = os.times(), time.monotonic() - t0
        own = (own1.user + own1.system) - (own0.user + own0.system)
        busy = busy_from_stat(before, after, cpus, own, os.sysconf("SC_CLK_TCK"))
        return busy, f"/proc/stat over {dt:.2f} s"
    except (AttributeError, OSError, ValueError):
        pass
    try:
        return max(0.0, os.getloadavg()[0]), "1-minute load average"
    except (AttributeError, OSError):
        return 0.0, "no load reading on this system"


def busy_cores(interval: float = SAMPLE_S) -> tuple[float, str]:
    """Cores other processes keep busy now (a float), and how that was measured: /proc/stat
    sampled over ``interval`` seconds (this process's own CPU time left out), else the 1-minute
    load average. A reading younger than a few seconds is reused."""
    now = time.monotonic()
    hit = _cache.get("busy")
    if hit is not None and now - hit[0] < _CACHE_S:
        return hit[1]
    reading = _sample(interval)
    _cache["busy"] = (time.monotonic(), reading)
    return reading


def auto_threads(cap: int = 0) -> ThreadChoice:
    """The thread count for work starting now: one per usable core that other processes leave
    free (a core counts as taken when they use more than ``BUSY_SHARE`` of it), at least 1, at
    most the usable cores and ``cap`` (> 0: the library's own limit, e.g. OMP_NUM_THREADS).

    Two threads that spin-wait beside a busy core cost many times one thread's time
    (docs/threads.md), while one thread on a free machine costs 1.3x: so a core in doubt is
    left to the other process."""
    cores = usable_cores()
    limit = min(cores, cap) if cap > 0 else cores
    if limit <= 1:
        why = f"{cores} usable core(s)" if cores <= 1 else f"the library's limit is {limit}"
        return ThreadChoice(1, f"automatic: {why}", True)
    busy, how = busy_cores()
    taken = max(0, math.ceil(busy - BUSY_SHARE))
    count = max(1, min(limit, cores - taken))
    return ThreadChoice(count, f"automatic: {busy:.1f} of {cores} cores busy with other "
                               f"processes ({how})", True)


def resolve_threads(configured: int, *, resuming: bool = False, recorded: int | None = None,
                    default: int = 0) -> ThreadChoice:
    """The count a run uses: ``configured`` when > 0; else the ``recorded`` count of the run it
    resumes (the same split of the work, so the same bits); else, resuming a run that recorded
    none, ``default`` (the library's count, which that run used); else :func:`auto_threads`
    capped at ``default``."""
    if configured > 0:
        return ThreadChoice(configured, "as configured")
    if resuming and recorded:
        return ThreadChoice(int(recorded), "the count of the run being resumed")
    if resuming and default > 0:
        return ThreadChoice(default, "the library's default: the run being resumed did not "
                                     "record its count")
    return auto_threads(default)
