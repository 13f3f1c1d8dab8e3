"""Gradual pruning: the density falls from 1 to the target during one training run.

Zhu & Gupta's cubic schedule (*To prune, or not to prune*, 2017): at ramp progress p in [0, 1]
the kept fraction is ``d(p) = target + (1 - target) * (1 - p)^3`` -- fast pruning while the network
is redundant, slow near the target, where every weight matters. The masks are recomputed by the
configured pruner (PE-balanced, row-balanced or plain magnitude) every ``1 / updates_per_epoch``
of an epoch over ``ramp_epochs`` epochs, never reviving a pruned weight, so every intermediate
mask is as balanced as the final one. The run then continues at the target density, selected
on dev loss with the usual learning-rate decay and early stopping (``ese.model.train``).

The ramp usually starts from the trained dense model. With ``prune.init = "scratch"`` it starts
from a random initialisation after ``prune.dense_epochs`` epochs of dense training, so that one
run replaces dense training and retraining (the dense model is then only the reference and,
with distillation, the teacher).
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from ese.compress.prune import MagnitudePruner, check_density, prunable_names
from ese.errors import ConfigError
from ese.model.lstmp import AcousticModel


def cubic_density(progress: float, target: float, start: float = 1.0) -> float:
    """Kept fraction at ramp ``progress`` (clipped to [0, 1]): ``start`` at 0, ``target`` at 1."""
    p = min(max(progress, 0.0), 1.0)
    return target + (start - target) * (1.0 - p) ** 3


class GradualPruning:
    """A :class:`ese.model.train.MaskSchedule` pruning with ``pruner`` along the cubic ramp."""

    def __init__(self, pruner: MagnitudePruner, target: float, ramp_epochs: int,
                 updates_per_epoch: int = 8,
                 allocate: Callable[[float], dict[str, float]] | None = None,
                 dense_epochs: int = 0) -> None:
        self.pruner = pruner
        self.allocate = allocate  # overall density -> per-matrix densities (default: uniform)
        self.target = check_density(target, "prune.density")
        if ramp_epochs < 1:
            raise ConfigError(f"prune.ramp_epochs must be >= 1, not {ramp_epochs!r}")
        if updates_per_epoch < 1:
            raise ConfigError(f"prune.updates_per_epoch must be >= 1, not {updates_per_epoch!r}")
        if dense_epochs < 0:
            raise ConfigError(f"prune.dense_epochs must be >= 0, not {dense_epochs!r}")
        self.ramp_epochs = ramp_epochs
        self.updates_per_epoch = updates_per_epoch
        self.dense_epochs = dense_epochs  # epochs of dense training before the ramp (from scratch)

    def density_at(self, epoch: int, batch: int, n_batches: int) -> float | None:
        """The density of the update before ``batch`` of ``epoch``, or None when none is due."""
        epoch -= self.dense_epochs
        if not 1 <= epoch <= self.ramp_epochs:
            return None
        every = max(1, math.ceil(n_batches / self.updates_per_epoch))
        if batch % every:
            return None
        done = (epoch - 1) * n_batches + batch + every  # batches trained once this mask is set
        return cubic_density(done / (self.ramp_epochs * n_batches), self.target)

    def update(self, model: AcousticModel, masks: dict[str, torch.Tensor] | None, epoch: int,
               batch: int, n_batches: int) -> dict[str, torch.Tensor] | None:
        density = self.density_at(epoch, batch, n_batches)
        if density is None:
            return None
        densities = (self.allocate(density) if self.allocate is not None
                     else {name: density for name in prunable_names(model)})
        return self.pruner.compute_masks(model, densities, prev=masks)

    def at_target(self, epoch: int) -> bool:
        return epoch >= self.dense_epochs + self.ramp_epochs
