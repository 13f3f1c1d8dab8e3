"""One job per work directory (issue 12, item 8): a second `ese run` is refused in one line
naming the holder's process id; a lock left by a killed run is taken over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ese.errors import LockError
from ese.lock import LOCK_NAME, lock_holder, work_lock

HOLD = ("import sys, time; from ese.lock import work_lock\n"
        "with work_lock(sys.argv[1], 'ese run'):\n"
        "    print('held', flush=True); time.sleep(120)\n")


@pytest.fixture
def holder(tmp_path: Path):
    """Another process holding the lock of tmp_path/work."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "work")], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_a_second_run_on_the_same_workdir_is_refused(tmp_path, holder):
    proc = subprocess.run([sys.executable, "-m", "ese", "run", "--workdir", str(tmp_path / "work"), "--preset",
                           "tiny", "--quiet"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: {str(tmp_path / 'work')!r} is in use by process {holder.pid} (ese run); wait for it to finish "
        "or stop that process, or use another directory"]
    assert not (tmp_path / "work" / "corpus").exists()  # no stage started


def test_a_killed_holders_lock_is_taken_over(tmp_path, holder):
    with pytest.raises(LockError, match=rf"process {holder.pid} \(ese run\)"):
        with work_lock(tmp_path / "work", "test"):
            pass
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert lock_holder(tmp_path / "work").startswith(f"process {holder.pid}")  # stale, as a kill leaves it
    with work_lock(tmp_path / "work", "test"):
        assert lock_holder(tmp_path / "work") == f"process {os.getpid()} (test)"


def test_the_holding_process_may_lock_again_and_releases_once(tmp_path):
    with work_lock(tmp_path, "outer"):
        with work_lock(tmp_path, "inner (same job)"):
            assert lock_holder(tmp_path) == f"process {os.getpid()} (outer)"
        assert lock_holder(tmp_path) == f"process {os.getpid()} (outer)"
    assert lock_holder(tmp_path) == ""
    assert (tmp_path / LOCK_NAME).exists()


def test_a_named_lock_guards_one_output_in_a_shared_directory(tmp_path):
    with work_lock(tmp_path, "ese prune", name=".pruned.pt.lock"):
        with work_lock(tmp_path, "ese run"):  # another name: no conflict
            pass
    assert lock_holder(tmp_path, ".pruned.pt.lock") == ""
