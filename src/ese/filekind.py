"""Say what a file is from its first bytes, for error messages that name the real problem.

``ese compile`` given an image, a text file or a binary should say "that is a program image, not
a .qnpz", not suggest loading it unsafely; a checkpoint loader given a zero-length file should say
it is empty. Only magic numbers are read; nothing is parsed or unpickled.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

_MAGICS = (
    (b"ESEPROG\x00", "an ese program image (.ese)"),
    (b"\x7fELF", "an ELF executable or library"),
    (b"\x93NUMPY", "a single NumPy array (.npy)"),
    (b"RIFF", "a RIFF file (audio?)"),
    (b"NIST_1A", "a NIST SPHERE audio file"),
    (b"\x89PNG", "a PNG image"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x80\x02", "a legacy (pre-1.6) PyTorch file or a pickle"),
)


def describe_file(path: str | Path) -> str:
    """A short noun phrase for what ``path`` holds: 'an empty file', 'a PyTorch checkpoint', ..."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    if not head:
        return "an empty file"
    for magic, what in _MAGICS:
        if head.startswith(magic):
            return what
    if head.startswith(b"PK"):
        return _describe_zip(path)
    try:
        head.decode("utf-8")
        return "a text file"
    except UnicodeDecodeError:
        return "binary data of an unknown kind"


def _describe_zip(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return "a damaged or truncated ZIP archive"
    if any(n.endswith("data.pkl") for n in names):
        return "a PyTorch file"
    if names and all(n.endswith(".npy") for n in names):
        return "a NumPy archive (.npz / .qnpz)"
    return "a ZIP archive"


MODEL_KINDS = ("checkpoint", "qmodel", "image")


def model_kind(path: str | Path) -> str | None:
    """Which ese model file ``path`` holds, from its content: "image" (``ESEPROG`` magic),
    "qmodel" (a ZIP with ``header.npy``: a ``.qnpz``), "checkpoint" (a ZIP with ``data.pkl``:
    a PyTorch file), or None (anything else, unreadable or damaged; :func:`describe_file` says
    what). Every opener of model files asks this, never the file name."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return None
    if head == b"ESEPROG\x00":
        return "image"
    if not head.startswith(b"PK"):
        return None
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return None
    if "header.npy" in names:
        return "qmodel"
    if any(n.endswith("data.pkl") for n in names):
        return "checkpoint"
    return None


def model_kind_or_suffix(path: str | Path) -> str | None:
    """:func:`model_kind`, else (a damaged file) the kind its name claims, so that the loader of
    that kind can say what is wrong with it."""
    return model_kind(path) or {".qnpz": "qmodel", ".ese": "image", ".pt": "checkpoint"}.get(Path(path).suffix)
