"""Self-describing float checkpoints: weights, the full config, phone set, history and metadata.

A checkpoint is a ``torch.save`` of plain dicts, lists, numbers, strings and tensors, so it loads
with ``torch.load(weights_only=True)``. Layout (``FORMAT_VERSION`` 1)::

    format, version       "ese-checkpoint", 1
    model_config          ModelConfig as a dict (rebuilds the model without any flags)
    config                the whole Config.to_dict() (features, train, ...), or {}
    phones                the output classes, in order (PHONES_48)
    model                 state_dict of the weights to use (the best epoch's, after training)
    epoch, best_epoch     last finished epoch and the epoch ``model`` comes from
    history               per-epoch metric dicts
    extra                 caller metadata (feature statistics, ...)
    train_state           only while training: last weights, optimizer, scheduler, RNG states
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ese.atomic import atomic_path
from ese.config import Config, ModelConfig, from_dict
from ese.data.phones import PHONES_48
from ese.errors import CheckpointError, ConfigError
from ese.model.lstmp import AcousticModel

FORMAT = "ese-checkpoint"
FORMAT_VERSION = 1


def save_checkpoint(path: str | Path, model: AcousticModel, *,
                    weights: dict[str, torch.Tensor] | None = None,
                    config: dict[str, Any] | None = None,
                    epoch: int = 0, best_epoch: int | None = None,
                    history: list[dict[str, Any]] | None = None,
                    extra: dict[str, Any] | None = None,
                    train_state: dict[str, Any] | None = None) -> None:
    """Write ``model`` (or ``weights``, a state dict for its config) and metadata atomically.

    numpy arrays inside ``extra`` are stored as tensors (they come back as tensors) so that the
    file stays loadable with ``weights_only=True``.
    """
    state = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "model_config": dataclasses.asdict(model.cfg),
        "config": config or {},
        "phones": list(PHONES_48),
        "model": _cpu_state(model.state_dict() if weights is None else weights),
        "epoch": epoch,
        "best_epoch": epoch if best_epoch is None else best_epoch,
        "history": list(history or []),
        "extra": _plain(extra or {}),
    }
    if train_state is not None:
        state["train_state"] = train_state
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw checkpoint dict after format, version and finiteness checks."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated or foreign files
        raise CheckpointError(f"checkpoint {str(path)!r} is unreadable or corrupt "
                              f"({type(exc).__name__}: {_first_line(exc)})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not an ese checkpoint")
    if state.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {str(path)!r} has format version "
                              f"{state.get('version')!r}; this ese reads version {FORMAT_VERSION}")
    for key in ("model_config", "model"):
        if key not in state:
            raise CheckpointError(f"checkpoint {str(path)!r} lacks {key!r}")
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
    meta = {k: v for k, v in state.items() if k != "model"}
    meta["model_config"] = cfg
    return model, meta


def checkpoint_config(meta: dict[str, Any], overrides: list[str] | None = None) -> Config:
    """The whole config a checkpoint was made with (its own model config), plus overrides."""
    cfg = Config.from_saved(meta.get("config") or {}, overrides)
    return dataclasses.replace(cfg, model=meta["model_config"])


def build_model(cfg: ModelConfig, weights: dict[str, torch.Tensor], *, where: str) -> AcousticModel:
    """An AcousticModel for ``cfg`` holding ``weights`` (CheckpointError if they do not fit)."""
    model = AcousticModel(cfg)
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise CheckpointError(f"weights in {where!r} do not fit the model config: "
                              f"{_first_line(exc)}") from None
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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no detail"
