"""Keep numba's on-disk cache of the engine's kernels true to their sources.

numba caches a compiled function under the stamp (modification time and size) of the one file
that defines it. The engine's kernels inline functions of other files (a cell's element-wise
step from ``cells.py``, the arithmetic of ``arith.py``, the SIMD intrinsics of ``simd.py``), so an
edit there alone would leave a kernel's cached machine code stale: it would run the old step.
:func:`refresh` hashes every runtime file that defines numba code and, when the hash differs
from the one recorded beside the cache, drops this package's cached kernels (numba recompiles
them once). It runs when :mod:`ese.runtime` is imported, before any kernel is compiled or loaded.
Only the in-tree cache (``__pycache__`` beside the sources) is managed; a read-only install whose
cache numba keeps elsewhere is not touched.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
MARKER = "numba-sources.sha256"


def sources_digest(folder: Path = HERE) -> str:
    """SHA-256 over the names and contents of the folder's files that define numba code."""
    h = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        text = path.read_bytes()
        if b"njit" in text or b"@intrinsic" in text:
            h.update(path.name.encode() + b"\0" + text + b"\0")
    return h.hexdigest()


def refresh(folder: Path = HERE) -> bool:
    """Drop the folder's cached kernels if its numba sources changed since they were cached;
    True when it dropped them. Never raises: a cache it cannot manage is left to numba."""
    cache = folder / "__pycache__"
    marker = cache / MARKER
    digest = sources_digest(folder)
    try:
        if marker.read_text() == digest:
            return False
    except OSError:
        pass
    try:
        cache.mkdir(exist_ok=True)
        for f in list(cache.glob("*.nbi")) + list(cache.glob("*.nbc")):
            f.unlink(missing_ok=True)
        tmp = cache / f"{MARKER}.{digest[:8]}.tmp"
        tmp.write_text(digest)
        tmp.replace(marker)
    except OSError:
        return False
    return True
