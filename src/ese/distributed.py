"""Data-parallel jobs under ``torchrun``: which process this is, and the few collectives training needs.

``torchrun --nproc-per-node N -m ese train ...`` starts N copies of the same command with
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in their
environment. Nothing else tells ese it is distributed: without those variables (or with
``WORLD_SIZE=1``) every function here is a no-op and a job is the plain one-process job.

The contract every caller keeps:

- rank 0 alone writes (checkpoints, logs, reports, progress bars, JSON) and takes the
  work-directory lock (:func:`is_main` answers from the environment, before any process group
  exists, so ``ese.lock`` can ask it);
- every rank computes the same decisions from the same numbers (the learning-rate schedule, early
  stopping, pruning masks), so they never need to be sent, except the masks, which
  :func:`broadcast_masks` copies from rank 0 all the same, so that "pruned weights are exactly
  zero on every rank" holds by construction, not by the equality of two float computations;
- gradients are summed with :func:`all_reduce_sum`, each rank having scaled its loss by the
  labelled frames of the whole global batch (:func:`global_count`), so a step's gradient is the
  gradient of the global batch's mean loss at any process count.

Collectives time out after ``ESE_DIST_TIMEOUT_S`` seconds (default 300): a rank that dies makes
the others fail in that time at the latest instead of hanging (torchrun normally stops them at
once when one of its workers exits). The backend is gloo on CPU, which is where ese trains; with
``ESE_DIST_BACKEND=nccl`` (CUDA machines) the reductions run on the rank's GPU.
"""

from __future__ import annotations

import datetime
import os
from typing import Any

from ese.errors import EseError

DEFAULT_TIMEOUT_S = 300.0
DEFAULT_WAIT_S = 24 * 3600.0  # rank 0 alone synthesizing a corpus or scoring a model
_state: dict[str, Any] = {"group": None, "backend": None, "waits": None}


class DistributedError(EseError):
    """A data-parallel job could not start or lost one of its processes."""


def world_size() -> int:
    """Processes in the job (1 when not started by torchrun)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        raise DistributedError(f"WORLD_SIZE must be an integer, not {os.environ['WORLD_SIZE']!r}") from None


def rank() -> int:
    """This process's rank, 0 .. world_size() - 1 (0 when not started by torchrun)."""
    try:
        return int(os.environ.get("RANK", "0")) if world_size() > 1 else 0
    except ValueError:
        raise DistributedError(f"RANK must be an integer, not {os.environ['RANK']!r}") from None


def is_main() -> bool:
    """True in the one process that writes outputs (rank 0, or a plain one-process job)."""
    return rank() == 0


def active() -> bool:
    """True when this job has more than one process."""
    return world_size() > 1


def timeout_s() -> float:
    text = os.environ.get("ESE_DIST_TIMEOUT_S", "")
    try:
        value = float(text) if text else DEFAULT_TIMEOUT_S
    except ValueError:
        raise DistributedError(f"ESE_DIST_TIMEOUT_S must be a number of seconds, not {text!r}") from None
    if not value > 0:
        raise DistributedError(f"ESE_DIST_TIMEOUT_S must be > 0, not {text!r}")
    return value


def backend() -> str:
    """gloo (CPU tensors), or nccl when ``ESE_DIST_BACKEND=nccl`` and CUDA is there."""
    import torch

    wanted = os.environ.get("ESE_DIST_BACKEND", "gloo").strip().lower()
    if wanted not in ("gloo", "nccl"):
        raise DistributedError(f"ESE_DIST_BACKEND must be gloo or nccl, not {wanted!r}")
    if wanted == "nccl" and not torch.cuda.is_available():
        raise DistributedError("ESE_DIST_BACKEND=nccl needs a CUDA device; this machine has none (use gloo)")
    return wanted


def init() -> None:
    """Join the job's process group (once per process; nothing to do in a one-process job)."""
    if not active() or _state["group"] is not None:
        return
    import torch
    import torch.distributed as dist

    be = backend()
    if be == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        try:
            dist.init_process_group(be, timeout=datetime.timedelta(seconds=timeout_s()))
        except (RuntimeError, ValueError) as exc:
            raise DistributedError(f"rank {rank()} of {world_size()} could not join the job "
                                   f"({_first_line(exc)}); start it with torchrun") from None
    _state["group"], _state["backend"] = dist.group.WORLD, be
    # a second group with a long timeout, for waiting while rank 0 alone works (a dead peer
    # still ends the wait at once: its connection closes)
    _state["waits"] = dist.new_group(backend="gloo", timeout=datetime.timedelta(seconds=DEFAULT_WAIT_S))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _collective(what: str, fn, *args, **kwargs):
    """Run a collective; a peer that died or timed out becomes one DistributedError line."""
    try:
        return fn(*args, **kwargs)
    except (RuntimeError, OSError) as exc:  # gloo: "Connection closed by peer", "Timed out ..."
        raise DistributedError(f"rank {rank()}: {what} failed, another process of the job stopped or "
                               f"timed out after {timeout_s():g} s ({_first_line(exc)}); the last "
                               "checkpoint is the last complete epoch") from None


def _device_copy(t):
    return t.cuda() if _state["backend"] == "nccl" else t


def all_reduce_sum(tensors: list) -> None:
    """Sum ``tensors`` over all ranks in place (one flat message; float32 and float64 kept apart)."""
    if not active():
        return
    import torch
    import torch.distributed as dist

    init()
    by_dtype: dict[Any, list] = {}
    for t in tensors:
        by_dtype.setdefault(t.dtype, []).append(t)
    for group in by_dtype.values():
        flat = _device_copy(torch.cat([t.reshape(-1) for t in group]))
        _collective("summing gradients", dist.all_reduce, flat, op=dist.ReduceOp.SUM)
        flat = flat.cpu()
        offset = 0
        for t in group:
            t.copy_(flat[offset:offset + t.numel()].view_as(t))
            offset += t.numel()


def all_reduce_grads(params) -> None:
    """Sum every parameter's gradient over all ranks (a missing gradient counts as zeros)."""
    if not active():
        return
    import torch

    params = [p for p in params if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    all_reduce_sum([p.grad for p in params])


def global_count(n: int) -> int:
    """``n`` summed over all ranks (the labelled frames of a global batch)."""
    if not active():
        return n
    import torch

    t = torch.tensor([float(n)], dtype=torch.float64)
    all_reduce_sum([t])
    return int(round(float(t.item())))


def global_sum(values: list[float]) -> list[float]:
    """Each of ``values`` summed over all ranks (float64)."""
    if not active():
        return list(values)
    import torch

    t = torch.tensor(values, dtype=torch.float64)
    all_reduce_sum([t])
    return [float(v) for v in t.tolist()]


def broadcast_masks(masks: dict | None) -> dict | None:
    """Rank 0's pruning masks on every rank (the same names on every rank are required)."""
    if not active() or masks is None:
        return masks
    import torch
    import torch.distributed as dist

    init()
    names = sorted(masks)
    flat = _device_copy(torch.cat([masks[n].reshape(-1).to(torch.uint8) for n in names]))
    _collective("sharing the pruning masks", dist.broadcast, flat, src=0)
    flat = flat.cpu()
    out, offset = {}, 0
    for n in names:
        m = masks[n]
        out[n] = flat[offset:offset + m.numel()].view(m.shape).to(torch.bool)
        offset += m.numel()
    return out


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` (picklable) on every rank."""
    if not active():
        return obj
    import torch.distributed as dist

    init()
    box = [obj if is_main() else None]
    _collective("sharing the run state", dist.broadcast_object_list, box, src=0)
    return box[0]


def barrier(what: str = "waiting for the other processes") -> None:
    if not active():
        return
    import torch.distributed as dist

    init()
    _collective(what, dist.barrier)


def wait_for_main(what: str) -> None:
    """Every rank waits here until rank 0 (which alone did ``what``) arrives too."""
    if not active():
        return
    import torch.distributed as dist

    init()
    _collective(f"waiting for rank 0 ({what})", dist.barrier, group=_state["waits"])


def shard(ids, n_ranks: int | None = None, my_rank: int | None = None):
    """This rank's part of a global batch: every ``world``-th chunk from position ``rank``.

    The global batch (its chunks, their order) is the same at any process count; only who
    computes which chunk changes, so the summed gradient is the same up to float rounding.
    """
    n_ranks = world_size() if n_ranks is None else n_ranks
    my_rank = rank() if my_rank is None else my_rank
    return ids[my_rank::n_ranks]
