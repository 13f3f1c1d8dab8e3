"""``ese complete``: a model file written before ese recorded what inference needs, made whole.

What is missing (:meth:`ese.artefact.Artefact.missing`) is taken from ``source`` (the checkpoint
the file was made from, or any complete model file of the same network) and, for the
normalisation statistics when no source has them, measured on ``corpus``'s train split with the
model's feature configuration. The weights are not touched: the result is re-read and every
integer array (or tensor) compared with the input's before the call returns.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ese.artefact import Artefact, ArtefactError, open_artefact


def complete_artefact(path: str | Path, out: str | Path, *, source: str | Path | None = None,
                      corpus: str | Path | None = None, cache_dir: str | Path | None = None,
                      progress: bool = False) -> dict[str, Any]:
    """Write ``out``: ``path`` with its missing inference metadata filled; returns what was filled
    and from where (``filled``: {item: origin}) and the completed file's summary."""
    art = open_artefact(path)
    src = open_artefact(source) if source is not None else None
    if src is not None:
        _check_same_network(art, src)
    filled: dict[str, str] = {}
    features, phones, norm = art.features, art.phones, art.normalisation
    if features is None:
        if src is None or src.features is None:
            raise ArtefactError(f"{art.path} lacks the feature configuration; pass --from with the "
                                "checkpoint it was made from")
        features, filled["features"] = src.features, str(src.path)
    elif src is not None and src.features is not None and src.features != features:
        raise ArtefactError(f"{src.path} was made with another feature configuration than {art.path}")
    if not phones:
        if src is None or not src.phones:
            raise ArtefactError(f"{art.path} lacks the phone set; pass --from with the checkpoint it was made from")
        phones, filled["phones"] = src.phones, str(src.path)
    if norm is None and src is not None and src.normalisation is not None:
        norm, filled["normalisation"] = src.normalisation, str(src.path)
    if norm is None and features.cmvn == "none":
        from ese.data.frontend import Normalisation
        norm, filled["normalisation"] = Normalisation("none", trained_with="none"), "features.cmvn = none"
    if norm is None:
        if corpus is None:
            raise ArtefactError(f"{art.path} lacks the normalisation statistics and "
                                f"{'the --from file has none either' if src else 'no --from file was given'}; "
                                "pass --corpus with the corpus it was trained on (its train split is measured)")
        from ese.data.store import load_split
        train = load_split(corpus, "train", features, cache_dir=cache_dir, progress=progress)
        if train.normalisation is None:
            raise ArtefactError(f"corpus {corpus}: its train split has no frames to measure")
        norm, filled["normalisation"] = train.normalisation, f"{corpus} (train split, {train.normalisation.frames} frames)"
    _write(art, Path(out), features, norm, phones)
    done = open_artefact(out)
    done.require()
    _check_weights_equal(art, done)
    return {"model": str(art.path), "out": str(out), "kind": art.kind, "filled": filled, "summary": done.summary()}


def _check_same_network(art: Artefact, src: Artefact) -> None:
    mine = art.qmodel.model if art.fixed_point else art.model.cfg
    theirs = src.qmodel.model if src.fixed_point else src.model.cfg
    if mine != theirs:
        raise ArtefactError(f"{src.path} holds another network than {art.path} ({theirs} vs {mine})")
    if art.output_delay != src.output_delay:
        raise ArtefactError(f"{src.path} has output delay {src.output_delay}, {art.path} {art.output_delay}")


def _write(art: Artefact, out: Path, features, norm, phones: list[str]) -> None:
    if art.kind == "checkpoint":
        from ese.model.checkpoint import read_checkpoint, write_checked
        state = read_checkpoint(art.path)
        state["config"] = {**(state.get("config") or {}), "features": dataclasses.asdict(features)}
        state["phones"] = list(phones)
        state["normalisation"] = norm.to_dict()
        write_checked(out, state)
    elif art.kind == "qmodel":
        from ese.compress.qmodel import save_qmodel
        save_qmodel(out, dataclasses.replace(art.qmodel, features=features, normalisation=norm, phones=list(phones)))
    else:
        from ese.compiler.image import save_program
        prog = art.program
        prog.features, prog.normalisation, prog.phones = features, norm, list(phones)
        save_program(out, prog)


def _check_weights_equal(a: Artefact, b: Artefact) -> None:
    """ArtefactError unless every weight of ``b`` equals ``a``'s bit for bit."""
    if a.fixed_point:
        left, right = _qmodel_arrays(a.qmodel), _qmodel_arrays(b.qmodel)
        same = left.keys() == right.keys() and all(np.array_equal(left[k], right[k]) for k in left)
    else:
        left, right = a.model.state_dict(), b.model.state_dict()
        same = left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)
    if not same:
        raise ArtefactError(f"internal error: the weights of {b.path} differ from {a.path}'s")


def _qmodel_arrays(qm) -> dict[str, np.ndarray]:
    out = {f"layer{k}.{n}": arr for k, L in enumerate(qm.layers) for n, arr in L.arrays().items()}
    out.update({"output.w": qm.w_out, "output.b": qm.b_out, **{f"lut.{n}": t for n, t in qm.luts.items()}})
    return out
