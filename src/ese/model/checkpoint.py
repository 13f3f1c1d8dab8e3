"""Self-describing float checkpoints: weights, the full config, phone set, history and metadata.

A checkpoint is a ``torch.save`` of plain dicts, lists, numbers, strings and tensors, so it loads
with ``torch.load(weights_only=True)``. Layout (``FORMAT_VERSION`` 1)::

    format, version       "ese-checkpoint", 1
    model_config          ModelConfig as a dict (rebuilds the model without any flags)
    config                the whole Config.to_dict() (features, train, ...), or {}
    phones                the output classes, in order (PHONES_48; a CTC model adds "<blank>")
    model                 state_dict of the weights to use (the best epoch's, after training)
    epoch, best_epoch     last finished epoch and the epoch ``model`` comes from
    history               per-epoch metric dicts
    extra                 caller metadata (the corpus, ...)
    normalisation         what inference normalises features with (ese.data.frontend.Normalisation
                          as a dict: training-set mean and std, the kind); absent in checkpoints
                          written before it existed (ese complete adds it)
    train_state           only while training: last weights, optimizer, scheduler, RNG states
    checksum              {"algorithm": "sha256-entries-v1", "keys": [...], "sha256": hex}: a SHA-256
                          over every covered entry (tensor bytes, dtypes, shapes and plain values)

``.ese`` images carry a SHA-256 and ``.qnpz`` files the zip CRC; the zip PyTorch writes is not
checked on load, so a flipped bit in a weight (0.1007 -> 3.4e37) or in the optimizer state would
be used silently: the checksum is verified by every load. Checkpoints written before it existed
have no ``checksum`` entry and still load. Entries added after ``save_checkpoint`` (not in
``keys``) are not covered; pass them as ``entries`` to cover them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ese.atomic import write_bytes
from ese.config import Config, ModelConfig, from_dict
from ese.data.frontend import Normalisation
from ese.data.phones import output_classes, output_kind
from ese.errors import CheckpointError, ConfigError
from ese.filekind import describe_file
from ese.model.lstmp import AcousticModel

FORMAT = "ese-checkpoint"
FORMAT_VERSION = 1
CHECKSUM_ALGORITHM = "sha256-entries-v1"


def save_checkpoint(path: str | Path, model: AcousticModel, *,
                    weights: dict[str, torch.Tensor] | None = None,
                    config: dict[str, Any] | None = None,
                    epoch: int = 0, best_epoch: int | None = None,
                    history: list[dict[str, Any]] | None = None,
                    extra: dict[str, Any] | None = None,
                    train_state: dict[str, Any] | None = None,
                    entries: dict[str, Any] | None = None,
                    normalisation: Normalisation | dict[str, Any] | None = None) -> None:
    """Write ``model`` (or ``weights``, a state dict for its config) and metadata atomically.

    numpy arrays inside ``extra`` are stored as tensors (they come back as tensors) so that the
    file stays loadable with ``weights_only=True``. ``entries`` adds more top-level entries
    (e.g. a pruned checkpoint's ``masks``); every entry is covered by the checksum.
    ``normalisation`` (a :class:`Normalisation` or its dict) is what inference needs beside the
    config and the phones; pass the source checkpoint's on when deriving one from another.
    """
    state = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "model_config": dataclasses.asdict(model.cfg),
        "config": config or {},
        "phones": output_classes(model.cfg.num_classes),
        "model": _cpu_state(model.state_dict() if weights is None else weights),
        "epoch": epoch,
        "best_epoch": epoch if best_epoch is None else best_epoch,
        "history": list(history or []),
        "extra": _plain(extra or {}),
    }
    if normalisation is not None:
        norm = normalisation if isinstance(normalisation, Normalisation) else Normalisation.from_dict(normalisation)
        state["normalisation"] = norm.to_dict()
    if train_state is not None:
        state["train_state"] = train_state
    for key, value in (entries or {}).items():
        if key in state or key == "checksum":
            raise ValueError(f"checkpoint entry {key!r} is reserved")
        state[key] = value
    write_checked(path, state)


def write_checked(path: str | Path, state: dict[str, Any]) -> None:
    """``torch.save`` of ``state`` plus a ``checksum`` entry over all of it, written atomically.

    Serialised in memory and written with plain Python I/O, so a full disk is an OutputError
    naming the file (torch's own writer says only ``basic_ios::clear: iostream error``).
    """
    state = {k: v for k, v in state.items() if k != "checksum"}
    keys = list(state)
    state["checksum"] = {"algorithm": CHECKSUM_ALGORITHM, "keys": keys, "sha256": state_digest(state, keys)}
    buf = io.BytesIO()
    torch.save(state, buf)
    write_bytes(path, buf.getbuffer())


def state_digest(state: dict[str, Any], keys: list[str]) -> str:
    """SHA-256 over the entries ``keys`` of ``state``: every tensor's dtype, shape and bytes and
    every plain value, each under its path, in order."""
    h = hashlib.sha256()
    for key in keys:
        _hash_value(h, repr(key), state.get(key))
    return h.hexdigest()


def _hash_value(h: Any, where: str, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        t = value.detach().to("cpu").contiguous()
        h.update(f"{where}|tensor|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        h.update(f"{where}|dict|{len(value)}|".encode())
        for k, v in value.items():
            _hash_value(h, f"{where}/{k!r}", v)
    elif isinstance(value, (list, tuple)):
        h.update(f"{where}|{type(value).__name__}|{len(value)}|".encode())
        for i, v in enumerate(value):
            _hash_value(h, f"{where}/{i}", v)
    else:
        h.update(f"{where}|{type(value).__name__}|{value!r}|".encode())


def _verify(path: Path, state: dict[str, Any], what: str = "checkpoint") -> None:
    """CheckpointError unless the checksum matches (no checksum: an older checkpoint, accepted)."""
    if "checksum" not in state:
        # an older checkpoint has none; one whose key name lost a bit still holds its entry
        if any(isinstance(v, dict) and "sha256" in v and "keys" in v for v in state.values()):
            raise CheckpointError(f"{what} {str(path)!r} is corrupt: its checksum entry is damaged")
        return
    check = state["checksum"]
    keys = check.get("keys") if isinstance(check, dict) else None
    ok_form = (isinstance(check, dict) and check.get("algorithm") == CHECKSUM_ALGORITHM
               and isinstance(keys, list) and all(isinstance(k, str) for k in keys)
               and isinstance(check.get("sha256"), str)
               and set(keys) == set(state) - {"checksum"})  # every entry covered, none invented
    if not ok_form:
        raise CheckpointError(f"{what} {str(path)!r} is corrupt: its checksum entry is damaged")
    if state_digest(state, check["keys"]) != check["sha256"]:
        raise CheckpointError(f"{what} {str(path)!r} is corrupt: its SHA-256 does not match its "
                              "contents (a flipped bit or a damaged copy); use an intact copy or retrain")


def read_checked(path: str | Path, what: str = "checkpoint") -> dict[str, Any]:
    """Any dict written by :func:`write_checked` (a checkpoint, a pruning state), loaded with
    ``weights_only`` and its checksum verified; one-line CheckpointError naming ``what``."""
    state = _load_raw(Path(path), what)
    if isinstance(state, dict):
        _verify(Path(path), state, what)
    return state


def _load_raw(path: Path, what: str) -> Any:
    if not path.exists():
        raise CheckpointError(f"{what} {str(path)!r} does not exist")
    if not path.is_file():
        raise CheckpointError(f"{what} {str(path)!r} is a directory, not a file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # torch raises many types for truncated or foreign files; none helps a user
        kind = describe_file(path)
        detail = ("truncated or damaged" if kind in ("a PyTorch file", "a damaged or truncated ZIP archive")
                  else f"it is {kind}, not a file written by ese")
        raise CheckpointError(f"{what} {str(path)!r} is unreadable or corrupt: {detail}") from None
    return state


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw checkpoint dict after format, version, checksum and finiteness checks."""
    path = Path(path)
    state = _load_raw(path, "checkpoint")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not an ese checkpoint")
    if state.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {str(path)!r} has format version "
                              f"{state.get('version')!r}; this ese reads version {FORMAT_VERSION}")
    _verify(path, state)
    for key in ("model_config", "model"):
        if key not in state:
            raise CheckpointError(f"checkpoint {str(path)!r} lacks {key!r}")
    if not isinstance(state["model"], dict) or not all(isinstance(t, torch.Tensor) for t in state["model"].values()):
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt: its weights are not tensors")
    bad = [name for name, t in state["model"].items()
           if torch.is_floating_point(t) and not torch.isfinite(t).all()]
    if bad:
        raise CheckpointError(f"checkpoint {str(path)!r} has non-finite (NaN/inf) weights in "
                              f"{', '.join(bad)}; the run diverged, retrain with a lower "
                              "learning rate or use an earlier checkpoint")
    return state


def load_checkpoint(path: str | Path, expect: ModelConfig | None = None
                    ) -> tuple[AcousticModel, dict[str, Any]]:
    """Rebuild the model from ``path``; ``meta`` is every other entry of the checkpoint.

    With ``expect``, the stored model config must equal it field by field.
    """
    state = read_checkpoint(path)
    try:
        cfg = from_dict(ModelConfig, state["model_config"])
    except ConfigError as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} has an invalid model config: {exc}") from None
    if expect is not None:
        check_model_config(cfg, expect, where=str(path))
    model = build_model(cfg, state["model"], where=str(path))
    meta = {k: v for k, v in state.items() if k not in ("model", "checksum")}
    meta["model_config"] = cfg
    return model, meta


def checkpoint_config(meta: dict[str, Any], overrides: list[str] | None = None,
                      path: str | Path | None = None) -> Config:
    """The whole config a checkpoint was made with (its own model config), plus the TOML file
    ``path`` and overrides. A 49-output model is a CTC model even when its config was not kept."""
    data = dict(meta.get("config") or {})
    if output_kind(meta["model_config"].num_classes) == "ctc":
        data["train"] = {**data.get("train", {}), "loss": "ctc"}
    data["model"] = dataclasses.asdict(meta["model_config"])
    cfg = Config.from_saved(data, overrides, path)
    return dataclasses.replace(cfg, model=meta["model_config"])  # model overrides do not apply


def build_model(cfg: ModelConfig, weights: dict[str, torch.Tensor], *, where: str) -> AcousticModel:
    """An AcousticModel for ``cfg`` holding ``weights`` (CheckpointError if they do not fit)."""
    model = AcousticModel(cfg)
    problems = _misfits(model.state_dict(), weights)
    if problems:
        raise CheckpointError(f"weights in {where!r} do not fit the model config: {problems}")
    model.load_state_dict(weights)
    model.eval()
    return model


def check_model_config(got: ModelConfig, expect: ModelConfig, *, where: str) -> None:
    diffs = [f"{f.name}={getattr(got, f.name)!r} (expected {getattr(expect, f.name)!r})"
             for f in dataclasses.fields(ModelConfig)
             if getattr(got, f.name) != getattr(expect, f.name)]
    if diffs:
        raise CheckpointError(f"checkpoint {where!r} holds a different model: {', '.join(diffs)}")


def _cpu_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").clone() for k, v in state.items()}


def _plain(obj: Any) -> Any:
    """Make ``obj`` weights_only-loadable: numpy arrays and scalars become tensors / numbers."""
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj)).clone()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v) for v in obj)
    return obj


def _misfits(expected: dict[str, torch.Tensor], got: dict[str, torch.Tensor]) -> str:
    """'' if ``got`` fits ``expected`` name by name and shape by shape, else the first few misfits."""
    out = [f"{k} is missing" for k in expected if k not in got]
    out += [f"{k} is not part of the model" for k in got if k not in expected]
    out += [f"{k} has shape {tuple(got[k].shape)}, expected {tuple(v.shape)}"
            for k, v in expected.items() if k in got and tuple(got[k].shape) != tuple(v.shape)]
    return "; ".join(out[:3]) + (f"; and {len(out) - 3} more" if len(out) > 3 else "")
