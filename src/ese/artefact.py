"""Open any model file by what it holds, not its name: a checkpoint, a fixed-point model, an image.

``open_artefact(path)`` reads the first bytes (``ESEPROG`` for a program image; a ZIP with
``header.npy`` for a ``.qnpz``, with ``data.pkl`` for a PyTorch checkpoint), loads the file with
its own validating loader, and returns an :class:`Artefact` that says what it is, which engines
run it, and what inference needs from it:

============== ======================== ============================ ===================
needed         checkpoint (``.pt``)     fixed point (``.qnpz``)       image (``.ese``)
============== ======================== ============================ ===================
features       ``config.features``      header ``features``          metadata ``features``
normalisation  ``normalisation`` entry  header ``normalisation``     metadata ``normalisation``
phones         ``phones``               header ``phones``            metadata ``phones``
output delay   ``config.train``         header ``output_delay``      metadata ``output_delay``
spec version   (float: none)            header ``spec_version``      metadata ``spec_version``
============== ======================== ============================ ===================

Files written before a field existed lack it; :meth:`Artefact.require` then raises one line that
names what is missing and the ``ese complete`` command that writes a complete copy. Nothing is
filled in silently, with one unambiguous exception: a model trained without CMVN
(``features.cmvn = "none"``) needs no statistics, so its normalisation is ``none``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ese.compress.fixedpoint import FIXED_POINT_SPEC_VERSION
from ese.config import Config, FeatureConfig
from ese.data.frontend import Normalisation
from ese.errors import ConfigError, EseError, FeatureError
from ese.filekind import describe_file, model_kind

KINDS = {"checkpoint": "a float checkpoint (.pt)", "qmodel": "a fixed-point model (.qnpz)",
         "image": "a compiled program image (.ese)"}
ENGINES = {"checkpoint": ("torch", "ese-cpu"), "qmodel": ("ese-cpu",), "image": ("ese-cpu",)}


class ArtefactError(EseError):
    """A file that is not an ese model, or a model that lacks what a task needs."""


@dataclass(eq=False)
class Artefact:
    """An opened model file: its kind, what inference needs from it, and the loaded contents.

    ``model``/``meta`` are set for a checkpoint, ``qmodel`` for a fixed-point model and for an
    image (decoded), ``program`` for an image. ``features``, ``normalisation`` and ``phones`` are
    None / empty where the file does not carry them.
    """

    path: Path
    kind: str
    features: FeatureConfig | None
    normalisation: Normalisation | None
    phones: list[str]
    output_delay: int
    spec_version: int | None
    model: Any = None
    meta: dict[str, Any] = field(default_factory=dict)
    qmodel: Any = None
    program: Any = None

    @property
    def what(self) -> str:
        return KINDS[self.kind]

    @property
    def engines(self) -> tuple[str, ...]:
        """The engines that can run it, the default first."""
        return ENGINES[self.kind]

    @property
    def fixed_point(self) -> bool:
        return self.kind != "checkpoint"

    def missing(self) -> list[str]:
        """What inference needs and this file lacks (empty: self-contained)."""
        out = []
        if self.features is None:
            out.append("the feature configuration")
        if self.normalisation is None:
            out.append("the normalisation statistics (CMVN mean and std)")
        if not self.phones:
            out.append("the phone set")
        return out

    def require(self) -> None:
        """ArtefactError naming what is missing and the ``ese complete`` command that fills it."""
        lacking = self.missing()
        if not lacking:
            return
        raise ArtefactError(f"{self.path} ({self.what}) lacks {_and(lacking)}, which transcription needs "
                            f"(it was written before ese recorded them); make a complete copy with "
                            f"{self.complete_command()}")

    def complete_command(self) -> str:
        """The ``ese complete`` command line that fills what this file lacks."""
        args = [f"ese complete {self.path}"]
        if self.features is None or not self.phones:
            args.append("--from CHECKPOINT.pt")
        if self.normalisation is None:
            args.append("--corpus CORPUS")
        args.append(f"--out COMPLETE{self.path.suffix}")
        where = []
        if "--from CHECKPOINT.pt" in args:
            where.append("CHECKPOINT: the checkpoint it was made from")
        if "--corpus CORPUS" in args:
            where.append("CORPUS: the corpus it was trained on")
        return " ".join(args) + f" ({'; '.join(where)})"

    def check_engine(self, engine: str | None) -> str:
        """``engine`` (default: the kind's first) if it can run this file, else ArtefactError."""
        if engine is None:
            return self.engines[0]
        known = sorted({e for es in ENGINES.values() for e in es})
        if engine not in known:
            raise ArtefactError(f"--engine must be one of {', '.join(known)}, not {engine!r}")
        if engine not in self.engines:
            raise ArtefactError(f"{self.path} is {self.what}: the {engine} engine cannot run it "
                                f"(it runs on {' or '.join(self.engines)}); drop --engine or use "
                                f"{self.engines[0]}")
        return engine

    def summary(self) -> dict[str, Any]:
        """What it is and what it carries, as plain values (``ese transcribe --json`` shows it)."""
        return {"path": str(self.path), "kind": self.kind, "what": self.what, "engines": list(self.engines),
                "features": None if self.features is None else dataclasses.asdict(self.features),
                "normalisation": None if self.normalisation is None else self.normalisation.kind,
                "phones": len(self.phones), "output_delay": self.output_delay,
                "spec_version": self.spec_version, "missing": self.missing()}


def artefact_kind(path: str | Path) -> str:
    """"checkpoint", "qmodel" or "image" from the file's content; ArtefactError for anything else."""
    path = Path(path)
    if not path.exists():
        raise ArtefactError(f"model {str(path)!r} does not exist")
    if path.is_dir():
        raise ArtefactError(f"model {str(path)!r} is a directory, not a model file")
    kind = model_kind(path)
    if kind is not None:
        return kind
    if not os.access(path, os.R_OK):
        raise ArtefactError(f"model {str(path)!r} is unreadable (permission denied)")
    kind = describe_file(path)
    what = "truncated or damaged" if "truncated" in kind else f"it is {kind}"
    raise ArtefactError(f"{path} is not a model ese can open ({what}); expected a checkpoint (.pt), "
                        "a fixed-point model (.qnpz) or a program image (.ese)")


def open_artefact(path: str | Path) -> Artefact:
    """Identify ``path`` by content and load it (each kind's loader validates it fully)."""
    path = Path(path)
    kind = artefact_kind(path)
    if kind == "checkpoint":
        return _checkpoint(path)
    if kind == "qmodel":
        from ese.compress.qmodel import load_qmodel
        return _fixed(path, kind, load_qmodel(path), None)
    from ese.compiler.image import load_program
    program = load_program(path)
    return _fixed(path, kind, program.to_qmodel(), program)


def _checkpoint(path: Path) -> Artefact:
    from ese.model.checkpoint import load_checkpoint
    model, meta = load_checkpoint(path)
    try:
        cfg = Config.from_saved(meta.get("config") or {})
    except ConfigError as exc:
        raise ArtefactError(f"{path}: its saved configuration is invalid ({exc})") from None
    features = cfg.features if meta.get("config", {}).get("features") else None
    norm = _normalisation(path, meta.get("normalisation"), features)
    return Artefact(path, "checkpoint", features, norm, [str(p) for p in meta.get("phones") or []],
                    int(cfg.train.output_delay), None, model=model, meta=meta)


def _fixed(path: Path, kind: str, qm: Any, program: Any) -> Artefact:
    norm = qm.normalisation if qm.normalisation is not None else _normalisation(path, None, qm.features)
    return Artefact(path, kind, qm.features, norm, list(qm.phones), int(qm.output_delay),
                    int(qm.spec_version), qmodel=qm, program=program)


def _normalisation(path: Path, raw: Any, features: FeatureConfig | None) -> Normalisation | None:
    if raw is None:
        # the one unambiguous fill: a model trained without CMVN normalises nothing
        return Normalisation("none", trained_with="none") if features is not None and features.cmvn == "none" else None
    if isinstance(raw, Normalisation):
        return raw
    try:
        return Normalisation.from_dict(raw)
    except FeatureError as exc:
        raise ArtefactError(f"{path}: its normalisation entry is damaged ({exc})") from None


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


__all__ = ["Artefact", "ArtefactError", "ENGINES", "FIXED_POINT_SPEC_VERSION", "KINDS", "artefact_kind",
           "open_artefact"]
