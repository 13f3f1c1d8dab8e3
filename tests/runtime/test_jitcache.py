"""An edit of any file with numba code drops the runtime's cached kernels (they inline each other)."""

from __future__ import annotations

from ese.runtime.jitcache import MARKER, refresh, sources_digest


def _tree(tmp_path):
    (tmp_path / "cells.py").write_text("@nb.njit\ndef step(): return 1\n")
    (tmp_path / "kernels.py").write_text("@nb.njit\ndef kernel(): return step()\n")
    (tmp_path / "plain.py").write_text("x = 1\n")
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    return cache


def _fill(cache):
    for name in ("kernels.kernel-2.py311.nbi", "kernels.kernel-2.py311.1.nbc", "plain.cpython-311.pyc"):
        (cache / name).write_bytes(b"x")


def test_an_edit_of_an_inlined_file_drops_the_cached_kernels(tmp_path):
    cache = _tree(tmp_path)
    _fill(cache)
    assert refresh(tmp_path)  # no marker yet: whatever is cached may be stale
    assert sorted(p.name for p in cache.iterdir()) == [MARKER, "plain.cpython-311.pyc"]
    _fill(cache)
    assert not refresh(tmp_path)  # sources unchanged: the cache stays
    assert len(list(cache.glob("*.nb[ic]"))) == 2
    (tmp_path / "cells.py").write_text("@nb.njit\ndef step(): return 2\n")  # only the inlined file
    assert refresh(tmp_path)
    assert not list(cache.glob("*.nb[ic]"))
    assert (cache / MARKER).read_text() == sources_digest(tmp_path)


def test_files_without_numba_code_do_not_count(tmp_path):
    _tree(tmp_path)
    before = sources_digest(tmp_path)
    (tmp_path / "plain.py").write_text("x = 2\n")
    assert sources_digest(tmp_path) == before
