"""Frame-wise cross-entropy (or CTC, ``train.loss``: ese.model.ctc) training of the LSTMP acoustic model, resumable to the exact weights.

Each utterance is padded for the output delay (the output at frame t + d is trained on the label
of frame t), cut into chunks of ``chunk_frames`` (truncated BPTT; state starts at zero in every
chunk), and chunks are shuffled into minibatches by a seeded numpy Generator. After every epoch
the dev set is scored, the learning rate is decayed when the dev loss did not improve, training
stops after ``patience`` epochs without improvement, and a checkpoint is written atomically. The
checkpoint carries everything needed to continue (last weights, optimizer, scheduler and RNG
states), so ``resume=True`` after a kill ends with bit-identical weights to an uninterrupted run
(on the same machine and thread count: CPU matmul results depend on how work is split). The
thread count is ``train.threads``, or with 0 chosen from the machine's load when the run starts
(``ese.threads.auto_threads``); the state records it and a resumed run uses it again.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ese import distributed
from ese.config import LOSSES, Config, ModelConfig, TrainConfig, from_dict, with_loss_outputs
from ese.data.dataset import FeatureSet
from ese.errors import CheckpointError, ConfigError, EseError, FeatureError
from ese.model.checkpoint import check_model_config, read_checkpoint, save_checkpoint
from ese.model.ctc import CTCBatches
from ese.model.decode import evaluate
from ese.model.delay import check_utterance_features, pad_for_delay
from ese.model.lstmp import AcousticModel
from ese.model.teacher import whole_utterance_logits
from ese.threads import resolve_threads

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16")  # bf16: autocast forward (AVX-512 BF16 CPUs train ~2x faster)
_IMPROVEMENT = 1e-6  # relative dev-loss drop that counts as an improvement


@dataclass
class TrainResult:
    """What a training run produced: per-epoch history and the best model (dev loss)."""

    history: list[dict[str, Any]]
    best_epoch: int
    model: AcousticModel
    best_dev_loss: float
    stopped_early: bool = False
    ckpt_path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    masks: dict[str, torch.Tensor] | None = None  # the final masks (masked or gradual runs)
    threads: int = 0  # torch threads the run used (chosen when train.threads is 0; kept on resume)


class PlateauSchedule:
    """Multiply the learning rate by ``decay`` after every epoch whose dev loss did not improve;
    stop after ``patience`` such epochs in a row. Holds its state for resume."""

    def __init__(self, tcfg: TrainConfig) -> None:
        self.decay, self.min_lr, self.patience = tcfg.lr_decay, tcfg.min_lr, tcfg.patience
        self.lr = tcfg.lr
        self.best_loss = math.inf
        self.bad_epochs = 0

    def step(self, dev_loss: float) -> bool:
        """Record an epoch's dev loss; True when it is the best so far."""
        improved = (not math.isfinite(self.best_loss)
                    or dev_loss < self.best_loss - _IMPROVEMENT * abs(self.best_loss))
        if improved:
            self.best_loss, self.bad_epochs = dev_loss, 0
        else:
            self.bad_epochs += 1
            self.lr = max(self.lr * self.decay, self.min_lr)
        return improved

    @property
    def should_stop(self) -> bool:
        return self.bad_epochs >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"lr": self.lr, "best_loss": self.best_loss, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.lr, self.best_loss, self.bad_epochs = state["lr"], state["best_loss"], state["bad_epochs"]


class _Chunks:
    """All training chunks: delay-padded inputs and shifted labels, cut at fixed boundaries."""

    def __init__(self, fset: FeatureSet, delay: int, chunk_frames: int, input_dim: int) -> None:
        self.x: list[np.ndarray] = []
        self.y: list[np.ndarray] = []
        self.spans: list[tuple[int, int, int]] = []  # (utterance, start, end)
        labelled: list[int] = []  # labelled frames of each chunk
        for u in fset.utterances:
            check_utterance_features(u, input_dim)
            if u.num_frames == 0:
                continue
            x = pad_for_delay(np.asarray(u.feats, dtype=np.float32), delay)  # (T + d, D)
            # output t + d learns label t; the first d outputs have no target
            y = np.concatenate([np.full(delay, -1, np.int64), np.asarray(u.labels, np.int64)])
            k = len(self.x)
            self.x.append(x)
            self.y.append(y)
            for start in range(0, len(x), chunk_frames):
                self.spans.append((k, start, min(start + chunk_frames, len(x))))
                labelled.append(int((y[start:start + chunk_frames] >= 0).sum()))
        self.labelled = np.asarray(labelled, dtype=np.int64)

    def batch(self, ids: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Chunks ``ids`` as (B, T, D) inputs and (B, T) labels, padded with zeros / -1."""
        spans = [self.spans[i] for i in ids]
        longest = max(end - start for _, start, end in spans)
        dim = self.x[0].shape[1]
        x = np.zeros((len(spans), longest, dim), dtype=np.float32)
        y = np.full((len(spans), longest), -1, dtype=np.int64)
        for row, (k, start, end) in enumerate(spans):
            x[row, :end - start] = self.x[k][start:end]
            y[row, :end - start] = self.y[k][start:end]
        return torch.from_numpy(x), torch.from_numpy(y)

    def order(self, rng: np.random.Generator, batch_size: int) -> np.ndarray:
        return rng.permutation(len(self.spans))

    @staticmethod
    def loss(logits: torch.Tensor, y: torch.Tensor, teacher: torch.Tensor | None,
             distill: Distillation | None, norm: int | None = None) -> tuple[torch.Tensor, int]:
        return frame_loss(logits, y, teacher, distill, norm=norm)

    def teacher_logits(self, teacher: AcousticModel, batch_size: int = 16) -> list[np.ndarray]:
        """The teacher's logits for every (delay-padded) utterance, run whole: (T + d, C) each."""
        return whole_utterance_logits(teacher, self.x, batch_size)

    def teacher_batch(self, ids: np.ndarray, cached: list[np.ndarray]) -> torch.Tensor:
        """The cached teacher logits of chunks ``ids`` as (B, T, C), zero-padded."""
        spans = [self.spans[i] for i in ids]
        longest = max(end - start for _, start, end in spans)
        t = np.zeros((len(spans), longest, cached[0].shape[1]), dtype=np.float32)
        for row, (k, start, end) in enumerate(spans):
            t[row, :end - start] = cached[k][start:end]
        return torch.from_numpy(t)


def frame_loss(logits: torch.Tensor, y: torch.Tensor,
               teacher_logits: torch.Tensor | None = None,
               distill: Distillation | None = None, norm: int | None = None) -> tuple[torch.Tensor, int]:
    """Mean loss per labelled frame (cross-entropy, plus distillation when given), and the count.

    ``norm`` replaces the count as the divisor: a data-parallel rank divides its shard's summed
    loss by the labelled frames of the whole global batch, so the ranks' gradients sum to the
    gradient of the global batch's mean loss."""
    flat = logits.reshape(-1, logits.shape[-1])
    labels = y.reshape(-1)
    n = int((labels >= 0).sum())
    norm = max(n if norm is None else norm, 1)
    ce = F.cross_entropy(flat, labels, ignore_index=-1, reduction="sum") / norm
    if distill is None or teacher_logits is None or distill.weight == 0:
        return ce, n
    keep = labels >= 0
    temp = distill.temperature
    student = F.log_softmax(flat[keep] / temp, dim=-1)
    target = F.log_softmax(teacher_logits.reshape(-1, flat.shape[-1])[keep] / temp, dim=-1)
    kl = F.kl_div(student, target, log_target=True, reduction="sum") / norm
    return (1 - distill.weight) * ce + distill.weight * temp * temp * kl, n


class MaskSchedule(Protocol):
    """Masks that change during training (gradual pruning); see ``ese.compress.gradual``.

    ``update`` is called before every minibatch with the 1-based epoch and the batch index; it
    returns new masks when it is time to prune further, else None. Its answer may depend only
    on those indices and the current weights, so a resumed run updates at the same points.
    ``at_target(epoch)`` says whether the masks are final during that epoch: only such epochs
    are candidates for the best model and count towards learning-rate decay and early stopping.
    """

    def update(self, model: AcousticModel, masks: dict[str, torch.Tensor] | None, epoch: int,
               batch: int, n_batches: int) -> dict[str, torch.Tensor] | None: ...

    def at_target(self, epoch: int) -> bool: ...


@dataclass(frozen=True)
class Distillation:
    """Knowledge distillation from a teacher's frame posteriors (Hinton et al. 2015).

    The loss is ``(1 - weight) * CE(labels) + weight * T^2 * KL(teacher_T || student_T)`` per
    labelled frame, with both posteriors softened by temperature ``T``. The teacher sees each
    whole utterance once (its outputs are cached), so it costs one forward pass per run.
    """

    teacher: AcousticModel
    weight: float = 0.5
    temperature: float = 1.0


def _make_optimizer(model: AcousticModel, tcfg: TrainConfig) -> torch.optim.Optimizer:
    if tcfg.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    if tcfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=tcfg.lr, momentum=tcfg.momentum,
                               weight_decay=tcfg.weight_decay)
    raise ConfigError(f"train.optimizer must be 'adam' or 'sgd', not {tcfg.optimizer!r}")


def _validate_distill(distill: Distillation | None) -> None:
    if distill is None:
        return
    if not 0.0 <= distill.weight <= 1.0:
        raise ConfigError(f"distillation weight must be in [0, 1], not {distill.weight!r}")
    if not distill.temperature > 0:
        raise ConfigError(f"distillation temperature must be > 0, not {distill.temperature!r}")


def _validate(tcfg: TrainConfig) -> None:
    checks = [("epochs", tcfg.epochs >= 1), ("batch_size", tcfg.batch_size >= 1),
              ("chunk_frames", tcfg.chunk_frames >= 1), ("output_delay", tcfg.output_delay >= 0),
              ("lr", tcfg.lr > 0), ("lr_decay", 0 < tcfg.lr_decay <= 1),
              ("patience", tcfg.patience >= 1), ("grad_clip", tcfg.grad_clip >= 0),
              ("precision", tcfg.precision in PRECISIONS), ("threads", tcfg.threads >= 0),
              ("loss", tcfg.loss in LOSSES)]
    for name, ok in checks:
        if not ok:
            raise ConfigError(f"train.{name} has an invalid value {getattr(tcfg, name)!r}")


def _state_copy(model: AcousticModel) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def train_model(cfg: Config, train: FeatureSet, dev: FeatureSet, ckpt_path: Path, *,
                resume: bool = False, progress: bool = True,
                extra: dict[str, Any] | None = None,
                init_weights: dict[str, torch.Tensor] | None = None,
                masks: dict[str, torch.Tensor] | None = None,
                mask_schedule: MaskSchedule | None = None,
                distill: Distillation | None = None,
                on_epoch: Callable[[dict[str, Any], bool], None] | None = None) -> TrainResult:
    """Train ``cfg.model`` on ``train``, select on ``dev``, checkpoint to ``ckpt_path`` each epoch.

    With ``resume`` and an existing checkpoint, training continues after its last epoch (a run
    that already stopped early returns at once); without a checkpoint it starts afresh. History
    rows hold ``epoch, train_loss, dev_loss, dev_frame_acc, dev_per, lr, seconds`` (losses in
    nats per labelled frame; accuracy and PER in percent on the 39-class set).

    ``init_weights`` (a state dict) replaces the random initialisation (retraining a pruned
    model). ``masks`` (bool tensors keyed by parameter name) hold weights at exactly zero: their
    gradients are masked before clipping and the weights re-masked after every optimizer step.
    The masks are saved in the training state, so a resumed run keeps them.

    ``mask_schedule`` makes the masks evolve during the run (gradual pruning): it starts from
    ``masks`` (None = dense) and only epochs at the target density are selected on.
    ``distill`` adds a distillation term from a teacher model's posteriors to the loss.
    ``on_epoch(row, selectable)`` is called after every epoch's checkpoint (a recipe search
    reports to its scheduler there; it may stop the run by raising).
    """
    cfg = with_loss_outputs(cfg)
    tcfg = cfg.train
    _validate(tcfg)
    _validate_distill(distill)
    if len(train) == 0 or len(dev) == 0:
        raise FeatureError(f"training needs utterances in both sets (train {len(train)}, "
                           f"dev {len(dev)})")
    if tcfg.loss == "ce" and not train.aligned:
        raise FeatureError("the training corpus has no phone alignments (word transcripts only); "
                           "frame-wise cross-entropy needs them: train with --set train.loss=ctc")
    threads_before = torch.get_num_threads()
    try:  # _train sets the count once it knows whether it resumes (threads.resolve_threads)
        return _train(cfg, train, dev, Path(ckpt_path), resume=resume, progress=progress,
                      extra=extra, init_weights=init_weights, masks=masks,
                      mask_schedule=mask_schedule, distill=distill, on_epoch=on_epoch)
    finally:
        torch.set_num_threads(threads_before)


def _check_masks(model: AcousticModel, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        if name not in params or tuple(mask.shape) != tuple(params[name].shape):
            raise CheckpointError(f"mask {name!r} of shape {tuple(mask.shape)} matches no "
                                  "parameter of the model")
    return {name: mask.detach().to("cpu", torch.bool).clone() for name, mask in masks.items()}


def _apply_masks(model: AcousticModel, masks: dict[str, torch.Tensor], *, grads: bool) -> None:
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, mask in masks.items():
            p = params[name]
            target = p.grad if grads else p
            if target is not None:
                target.mul_(mask.to(target.dtype))


def _train(cfg: Config, train: FeatureSet, dev: FeatureSet, ckpt_path: Path, *, resume: bool,
           progress: bool, extra: dict[str, Any] | None,
           init_weights: dict[str, torch.Tensor] | None = None,
           masks: dict[str, torch.Tensor] | None = None,
           mask_schedule: MaskSchedule | None = None,
           distill: Distillation | None = None,
           on_epoch: Callable[[dict[str, Any], bool], None] | None = None) -> TrainResult:
    tcfg = cfg.train
    distributed.init()  # under torchrun: join the job (a no-op in one process)
    main = distributed.is_main()  # rank 0 alone writes, logs and shows progress
    progress = progress and main
    torch.manual_seed(tcfg.seed)
    rng = np.random.default_rng(tcfg.seed)
    model = AcousticModel(cfg.model)
    if init_weights is not None:
        try:
            model.load_state_dict(init_weights)
        except RuntimeError as exc:
            raise CheckpointError(f"initial weights do not fit the model config: "
                                  f"{str(exc).strip().splitlines()[0]}") from None
    masks = _check_masks(model, masks) if masks is not None else None
    if masks is not None:
        _apply_masks(model, masks, grads=False)
    optimizer = _make_optimizer(model, tcfg)
    schedule = PlateauSchedule(tcfg)
    history: list[dict[str, Any]] = []
    best_state, best_epoch, start_epoch, stopped = _state_copy(model), 0, 1, False

    # rank 0 reads the checkpoint and hands it to the others (no shared disk needed); nothing in
    # it depends on the process count, so a run resumes at any count
    state = read_checkpoint(ckpt_path) if resume and main and ckpt_path.exists() else None
    state = distributed.broadcast_object(state) if resume else None
    if state is not None:
        ts = state.get("train_state")
        if ts is None:
            raise CheckpointError(f"checkpoint {str(ckpt_path)!r} has no training state to "
                                  "resume from (it is a finished or exported model)")
        try:
            stored = from_dict(ModelConfig, state["model_config"])
        except ConfigError as exc:
            raise CheckpointError(f"checkpoint {str(ckpt_path)!r}: {exc}") from None
        try:
            check_model_config(stored, cfg.model, where=str(ckpt_path))
        except CheckpointError as exc:
            raise CheckpointError(f"cannot resume: {exc}; train to a new path or without "
                                  "resume") from None
        model.load_state_dict(ts["last_model"])
        optimizer.load_state_dict(ts["optimizer"])
        schedule.load_state_dict(ts["schedule"])
        torch.set_rng_state(ts["rng_torch"])
        rng.bit_generator.state = ts["rng_numpy"]
        stored_masks = ts.get("masks")
        if masks is not None and mask_schedule is None and (stored_masks is None or set(stored_masks) != set(masks) or not all(
                torch.equal(stored_masks[k], masks[k]) for k in masks)):
            raise CheckpointError(f"cannot resume {str(ckpt_path)!r}: it was trained with other "
                                  "pruning masks; retrain to a new path or without resume")
        masks = stored_masks
        history = list(state["history"])
        best_state, best_epoch = state["model"], state["best_epoch"]
        start_epoch, stopped = state["epoch"] + 1, ts["stopped"]
        if main:
            log.info("resuming %s after epoch %d", ckpt_path, state["epoch"])
    elif resume and main:
        log.info("no checkpoint at %s; training from scratch", ckpt_path)
    # rank 0 chooses (or reads the resumed run's count) and every rank uses the same count
    threads = distributed.broadcast_object(resolve_threads(
        tcfg.threads, resuming=state is not None,
        recorded=state["train_state"].get("threads") if state is not None else None,
        default=torch.get_num_threads()) if main else None)
    torch.set_num_threads(threads.count)
    if progress and tcfg.threads <= 0:
        print(f"threads: {threads.count} ({threads.reason}; --threads N sets it)", file=sys.stderr)
    if distributed.active():  # every rank starts from rank 0's weights and masks, bit for bit
        model.load_state_dict(distributed.broadcast_object(model.state_dict()))
        masks = distributed.broadcast_masks(masks)

    chunks = (CTCBatches(train, tcfg.output_delay, cfg.model.input_dim) if tcfg.loss == "ctc" else
              _Chunks(train, tcfg.output_delay, tcfg.chunk_frames, cfg.model.input_dim))
    teacher_cache = (chunks.teacher_logits(distill.teacher, tcfg.batch_size)
                     if distill is not None and distill.weight > 0 and not stopped else None)
    n_batches = math.ceil(len(chunks.spans) / tcfg.batch_size)
    progress_bar = Progress(TextColumn("[bold]epoch {task.fields[epoch]}"), BarColumn(),
                            MofNCompleteColumn(), TextColumn("loss {task.fields[loss]:.3f}"),
                            TimeRemainingColumn(), disable=not progress, transient=True)

    with progress_bar:
        for epoch in range(start_epoch, tcfg.epochs + 1):
            if stopped:
                break
            t0 = time.perf_counter()
            for group in optimizer.param_groups:
                group["lr"] = schedule.lr
            task = progress_bar.add_task("train", total=n_batches, epoch=epoch, loss=float("nan"))
            model.train()
            loss_sum, frames = 0.0, 0
            order = chunks.order(rng, tcfg.batch_size)
            for b in range(n_batches):
                if mask_schedule is not None:
                    new_masks = mask_schedule.update(model, masks, epoch, b, n_batches)
                    if new_masks is not None:
                        masks = distributed.broadcast_masks(_check_masks(model, new_masks))
                        _apply_masks(model, masks, grads=False)
                ids = order[b * tcfg.batch_size:(b + 1) * tcfg.batch_size]
                n_global = int(chunks.labelled[ids].sum())  # the global batch's labelled frames
                if n_global == 0:
                    progress_bar.advance(task)
                    continue
                ids = distributed.shard(ids)  # this rank's chunks of the global batch
                optimizer.zero_grad(set_to_none=True)
                loss = torch.zeros(())
                if len(ids):
                    x, y = chunks.batch(ids)
                    with torch.autocast("cpu", dtype=torch.bfloat16,
                                        enabled=tcfg.precision == "bf16"):
                        logits, _ = model(x)  # (B, T, C)
                    logits = logits.float()
                    soft = None if teacher_cache is None else chunks.teacher_batch(ids, teacher_cache)
                    loss, _ = chunks.loss(logits, y, soft, distill, norm=n_global)
                    loss.backward()
                distributed.all_reduce_grads(model.parameters())  # sum of the ranks' shards
                n = n_global
                if masks is not None:
                    _apply_masks(model, masks, grads=True)
                if tcfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.grad_clip)
                optimizer.step()
                if masks is not None:
                    _apply_masks(model, masks, grads=False)  # pruned weights stay exactly zero
                loss_sum, frames = loss_sum + float(loss.detach()) * n, frames + n
                progress_bar.update(task, advance=1, loss=loss_sum / frames)
            progress_bar.remove_task(task)
            if distributed.active():
                loss_sum = distributed.global_sum([loss_sum])[0]
            train_loss = loss_sum / frames if frames else float("nan")
            if not math.isfinite(train_loss) or model.non_finite_parameters():
                raise EseError(f"training diverged in epoch {epoch} (loss {train_loss}); "
                               "lower train.lr or check the features for extreme values")

            dev_res = evaluate(model, dev, tcfg.output_delay, batch_size=tcfg.batch_size)
            if dev_res["frames"] == 0:
                raise FeatureError(f"the dev set {dev.name!r} has no labelled frames to select on")
            lr_used = schedule.lr
            selectable = mask_schedule is None or mask_schedule.at_target(epoch)
            if selectable and schedule.step(dev_res["loss"]):
                best_state, best_epoch = _state_copy(model), epoch
            stopped = schedule.should_stop
            row = {"epoch": epoch, "train_loss": train_loss, "dev_loss": dev_res["loss"],
                   "dev_frame_acc": dev_res["frame_acc"], "dev_per": dev_res["per"],
                   "lr": lr_used, "seconds": time.perf_counter() - t0}
            history.append(row)
            if progress:
                progress_bar.console.print(
                    f"epoch {epoch:3d}  train {train_loss:.4f}  dev {row['dev_loss']:.4f}  "
                    f"frame acc {row['dev_frame_acc']:.1f}%  PER {row['dev_per']:.1f}%  "
                    f"lr {lr_used:.2e}  {row['seconds']:.1f}s" + ("  *" if best_epoch == epoch else ""))
            train_state = {"last_model": _state_copy(model), "optimizer": optimizer.state_dict(),
                           "schedule": schedule.state_dict(), "rng_torch": torch.get_rng_state(),
                           "rng_numpy": rng.bit_generator.state, "stopped": stopped,
                           "threads": threads.count}
            if masks is not None:
                train_state["masks"] = masks
            if main:
                save_checkpoint(ckpt_path, model, weights=best_state, config=cfg.to_dict(),
                                epoch=epoch, best_epoch=best_epoch, history=history, extra=extra,
                                train_state=train_state, normalisation=train.normalisation)
            if stopped and main:
                log.info("early stop after epoch %d; best epoch %d", epoch, best_epoch)
            if on_epoch is not None:
                on_epoch(row, selectable)

    best_model = AcousticModel(cfg.model)
    best_model.load_state_dict(best_state)
    best_model.eval()
    best_loss = history[best_epoch - 1]["dev_loss"] if best_epoch else float("nan")
    return TrainResult(history=history, best_epoch=best_epoch, model=best_model,
                       best_dev_loss=best_loss, stopped_early=stopped, ckpt_path=ckpt_path,
                       extra=dict(extra or {}), masks=masks, threads=threads.count)
