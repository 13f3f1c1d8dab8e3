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


# --- the automatic count ------------------------------------------------------------------------

import ese.threads as T  # noqa: E402
from ese.threads import auto_threads, busy_from_stat, resolve_threads  # noqa: E402


def _stat(*cpus):
    """A /proc/stat text: one ``cpuN`` line per (busy, idle) jiffies pair, after a total line."""
    lines = ["cpu  1 2 3 4 5 6 7 8 0 0"]
    lines += [f"cpu{k} {busy} 0 0 {idle} 0 0 0 0 0 0" for k, (busy, idle) in enumerate(cpus)]
    return "\n".join(lines + ["intr 12345", "ctxt 678"]) + "\n"


def test_busy_cores_from_two_proc_stat_readings():
    before = _stat((1000, 5000), (2000, 5000), (0, 0))
    after = _stat((1100, 5000), (2000, 5100), (100, 0))  # cpu0 busy, cpu1 idle, cpu2 not ours
    assert busy_from_stat(before, after, {0, 1}, 0.0, 100) == pytest.approx(1.0)
    # this process's own CPU time (0.4 s at 100 jiffies/s) is not another process's load
    assert busy_from_stat(before, after, {0, 1}, 0.4, 100) == pytest.approx(0.6)
    assert busy_from_stat(before, after, {0, 1}, 5.0, 100) == 0.0
    assert busy_from_stat(before, after, {2}, 0.0, 100) == pytest.approx(1.0)
    assert busy_from_stat(before, before, {0, 1}, 0.0, 100) == 0.0  # no time passed


def _machine(monkeypatch, cores, busy):
    monkeypatch.setattr(T, "usable_cores", lambda: cores)
    monkeypatch.setattr(T, "busy_cores", lambda interval=T.SAMPLE_S: (busy, "test reading"))


@pytest.mark.parametrize("cores,busy,cap,want", [
    (2, 0.0, 0, 2), (2, 0.2, 0, 2), (2, 0.3, 0, 1), (2, 1.0, 0, 1), (2, 2.0, 0, 1), (2, 7.5, 0, 1),
    (4, 1.0, 0, 3), (4, 1.3, 0, 2), (4, 0.0, 2, 2), (8, 0.1, 0, 8)])
def test_auto_threads_counts_the_cores_others_leave_free(monkeypatch, cores, busy, cap, want):
    _machine(monkeypatch, cores, busy)
    choice = auto_threads(cap)
    assert choice.count == want and choice.automatic
    assert f"{busy:.1f} of {cores} cores busy" in choice.reason and "test reading" in choice.reason


def test_one_core_or_a_limit_of_one_needs_no_reading(monkeypatch):
    def no_reading(interval=0):
        raise AssertionError("sampled the load for a count that cannot be more than 1")
    monkeypatch.setattr(T, "busy_cores", no_reading)
    monkeypatch.setattr(T, "usable_cores", lambda: 1)
    assert auto_threads().count == 1
    monkeypatch.setattr(T, "usable_cores", lambda: 4)
    assert auto_threads(cap=1).count == 1


def test_the_load_average_when_proc_stat_cannot_be_read(monkeypatch):
    def unreadable(*a, **k):
        raise OSError("no /proc")
    monkeypatch.setattr(T.os, "sched_getaffinity", unreadable, raising=False)
    monkeypatch.setattr(T.os, "getloadavg", lambda: (1.5, 1.0, 0.5))
    monkeypatch.setattr(T, "_cache", {})
    assert T.busy_cores(0.01) == (1.5, "1-minute load average")


def test_a_reading_is_reused_for_a_few_seconds(monkeypatch):
    calls = []
    monkeypatch.setattr(T, "_cache", {})
    monkeypatch.setattr(T, "_sample", lambda interval: calls.append(interval) or (0.5, "x"))
    assert T.busy_cores() == T.busy_cores() == (0.5, "x")
    assert len(calls) == 1


def test_resolve_threads_explicit_then_recorded_then_automatic(monkeypatch):
    _machine(monkeypatch, 2, 1.0)
    assert resolve_threads(3, resuming=True, recorded=2, default=2).count == 3  # as given
    got = resolve_threads(0, resuming=True, recorded=2, default=2)
    assert (got.count, got.automatic) == (2, False) and "resumed" in got.reason
    got = resolve_threads(0, resuming=True, recorded=None, default=2)  # a run from before
    assert got.count == 2 and "did not record" in got.reason
    got = resolve_threads(0, resuming=False, recorded=None, default=2)
    assert (got.count, got.automatic) == (1, True)
