"""Pruners: magnitude (per matrix) and load-balance-aware (per PE sub-matrix), ESE.md section 2.

A pruner is a configured object with one job, ``update_mask(name, weight, density) -> mask``
(the ``torch.ao.pruning`` idea): constructor arguments are the defaults, ``compute_masks`` takes
per-matrix densities by parameter name. Only the matrices of every recurrent layer (its cell's,
``ese.cell``) are pruned (they are what the PEs multiply); the vectors and the output softmax
layer stay dense (small, and computed outside the SpMV units).

Counting rule, shared by both pruners: a matrix of n weights at density d keeps
``K = max(1, round(d * n))`` weights, ties in |w| broken by the lower flat index. A previous mask
may be passed (``prev``); weights outside it are never revived, so iterative pruning only removes
weights (K is capped at the previous mask's count).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from ese.errors import CheckpointError, ConfigError
from ese.model.lstmp import AcousticModel
from ese.cell import cell_spec
from ese.partition import Partition, matrix_partition


def prunable_names(model: AcousticModel) -> list[str]:
    """Parameter names of the pruned matrices, in model order: ``layers.<k>.<matrix>`` for every
    matrix of the model's cell."""
    return [f"layers.{k}.{m}" for k in range(len(model.layers)) for m in cell_spec(model.cfg).matrix_names]


def check_density(density: float, what: str = "density") -> float:
    """``density`` as a float in (0, 1], else ConfigError quoting it."""
    try:
        value = float(density)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a number in (0, 1], not {density!r}") from None
    if not 0.0 < value <= 1.0:  # also rejects NaN
        raise ConfigError(f"{what} must be in (0, 1] (the fraction of weights kept), "
                          f"not {density!r}")
    return value


def parse_balance(balance: str) -> int | None:
    """``"pes:N"`` and ``"cluster:G[,pes:N]"`` -> N (32 by default for clusters); ``"none"`` and
    ``"rows:G"`` -> None (no PE balance), else ConfigError."""
    text = str(balance).strip().lower()
    if text == "none" or parse_row_group(text) is not None:
        return None
    cluster = parse_cluster(text)
    if cluster is not None:
        return cluster[1]
    head, sep, tail = text.partition(":")
    if head == "pes" and sep and tail.isdigit() and int(tail) >= 1:
        return int(tail)
    raise ConfigError(f"balance must be 'none' or 'pes:N' with N >= 1 PEs, not {balance!r} "
                      "(or 'rows:G': equal non-zeros per row in groups of G >= 1 SIMD rows; or "
                      "'cluster:G[,pes:N]': G-row clusters sharing their columns, balanced over N PEs)")


CLUSTER_PES = 32  # PEs a ``cluster:G`` balance is balanced over unless ``,pes:N`` says otherwise


def parse_cluster(balance: str) -> tuple[int, int] | None:
    """``"cluster:G"`` -> (G, 32), ``"cluster:G,pes:N"`` -> (G, N); anything else -> None.
    ConfigError when it starts with ``cluster:`` but is malformed, or when neither G divides N
    nor N divides G (then no block of rows covers every PE equally)."""
    text = str(balance).strip().lower().replace(" ", "")
    if not text.startswith("cluster:"):
        return None
    head, _, pes = text[len("cluster:"):].partition(",")
    n = CLUSTER_PES
    if pes:
        if not (pes.startswith("pes:") and pes[4:].isdigit() and int(pes[4:]) >= 1):
            raise ConfigError(f"balance {balance!r}: expected 'cluster:G' or 'cluster:G,pes:N'")
        n = int(pes[4:])
    if not (head.isdigit() and int(head) >= 1):
        raise ConfigError(f"balance {balance!r}: the cluster size G must be a positive integer")
    g = int(head)
    if n % g and g % n:
        raise ConfigError(f"balance {balance!r}: the cluster size {g} must divide the PE count {n} "
                          "or be a multiple of it")
    return g, n


def balanced_pes(meta: Mapping[str, Any]) -> int | None:
    """The PE count a pruned checkpoint's masks were balanced for (its run's ``prune.balance``,
    recorded with the masks), or None for a dense or not PE-balanced model. The hardware's
    ``pes`` may differ; the compiler reports it (``compile_report`` key ``balance``)."""
    if meta.get("masks") is None:
        return None
    balance = (meta.get("config") or {}).get("prune", {}).get("balance")
    try:
        return None if balance is None else parse_balance(balance)
    except ConfigError:
        return None


def parse_row_group(balance: str) -> int | None:
    """``"rows:G"`` -> G (SIMD row-group balance), anything else -> None."""
    head, sep, tail = str(balance).strip().lower().partition(":")
    if head == "rows" and sep and tail.isdigit() and int(tail) >= 1:
        return int(tail)
    return None


def _keep_count(n: int, density: float) -> int:
    return max(1, min(n, int(round(density * n))))


def _scores(name: str, weight: torch.Tensor, prev: torch.Tensor | None) -> np.ndarray:
    """|w| as float64, with weights outside ``prev`` scored -1 (below every kept weight)."""
    w = weight.detach().to("cpu", torch.float64).numpy()
    if w.ndim != 2:
        raise ConfigError(f"{name!r} is not a matrix (shape {tuple(w.shape)})")
    if not np.isfinite(w).all():
        raise CheckpointError(f"{name!r} holds NaN or inf weights; cannot prune a diverged "
                              "model, use an earlier checkpoint")
    score = np.abs(w)
    if prev is not None:
        if tuple(prev.shape) != w.shape:
            raise CheckpointError(f"mask of {name!r} has shape {tuple(prev.shape)}, the weight "
                                  f"{w.shape}")
        score = np.where(prev.cpu().numpy().astype(bool), score, -1.0)
    return score


def _top_k(score: np.ndarray, k: int) -> np.ndarray:
    """Flat indices of the k largest scores (stable: ties go to the lower index)."""
    return np.argsort(-score, kind="stable")[:k]


class MagnitudePruner:
    """Keep the largest-|w| weights of each matrix (global within the matrix, ignores PEs)."""

    def __init__(self, density: float = 0.11) -> None:
        self.density = check_density(density)

    def update_mask(self, name: str, weight: torch.Tensor, density: float | None = None, *,
                    prev: torch.Tensor | None = None) -> torch.Tensor:
        """A bool mask of ``weight``'s shape keeping ``density`` (default: the pruner's) of it."""
        d = self.density if density is None else check_density(density, f"density of {name!r}")
        score = _scores(name, weight, prev).ravel()
        mask = np.zeros(score.size, dtype=bool)
        k = min(_keep_count(score.size, d), int((score >= 0).sum()))  # never revive a pruned weight
        mask[_top_k(score, k)] = True
        return torch.from_numpy(mask.reshape(weight.shape))

    def compute_masks(self, model: AcousticModel, densities: Mapping[str, float] | None = None,
                      prev: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Masks of every prunable matrix; ``densities`` overrides the default per name."""
        return _compute(self, model, densities, prev)

    def state_dict(self) -> dict[str, object]:
        return {"kind": "magnitude", "density": self.density}


def _positive_int(what: str, value: object) -> int:
    """``value`` if it is an int >= 1 (bools refused), else ConfigError quoting it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{what} must be a positive integer, not {value!r}")
    return value


class BalancedPruner(MagnitudePruner):
    """Load-balance-aware: every PE's sub-matrix keeps the same number of weights (±1).

    A matrix of K kept weights gives each of the N PEs ``K // N`` of its own largest weights; the
    ``K mod N`` left over go one each to the PEs whose next candidate is largest. A PE whose
    sub-matrix is smaller than its share (N does not divide the rows, or more PEs than rows)
    keeps all of it and the rest is shared by the others, so counts are equal ±1 except that
    full PEs may hold fewer.
    """

    def __init__(self, density: float = 0.11, n_pes: int = 32, cell: str = "lstmp") -> None:
        super().__init__(density)
        self.n_pes = _positive_int("n_pes", n_pes)
        self.cell = cell  # whose description says which rows form one unit's gate rows

    def update_mask(self, name: str, weight: torch.Tensor, density: float | None = None, *,
                    prev: torch.Tensor | None = None) -> torch.Tensor:
        d = self.density if density is None else check_density(density, f"density of {name!r}")
        score = _scores(name, weight, prev)  # (R, C)
        part = matrix_partition(name, score.shape[0], self.n_pes, self.cell)
        # each PE's candidates (weights not pruned before), descending
        per_pe = [np.sort(score[rows].ravel())[::-1] for rows in part.rows_of_pe]
        per_pe = [s[s >= 0] for s in per_pe]
        counts = _share(per_pe, min(_keep_count(score.size, d), sum(len(s) for s in per_pe)))
        mask = np.zeros(score.shape, dtype=bool)
        for rows, k in zip(part.rows_of_pe, counts):
            if k:
                sub = np.zeros(len(rows) * score.shape[1], dtype=bool)
                sub[_top_k(score[rows].ravel(), int(k))] = True
                mask[rows] = sub.reshape(len(rows), score.shape[1])
        return torch.from_numpy(mask)

    def state_dict(self) -> dict[str, object]:
        return {"kind": "balanced", "density": self.density, "n_pes": self.n_pes}


class RowBalancedPruner(MagnitudePruner):
    """SIMD-row-balanced: every row of each group of ``group`` consecutive rows keeps the same count.

    The "PEs" are the rows one SIMD register processes together (``group`` = its lanes): a sliced
    (SELL-C) layout of such a matrix needs no padding. Groups may keep different counts. A group's
    j-th *level* (one more weight in each of its rows) is scored by the mean over its rows of the
    row's j-th largest |w| (unavailable once a row runs out of candidates); levels are taken best
    first while the total stays nearest K, so the kept count is K rounded to whole levels. Within
    a row, ties go to the lower column.
    """

    def __init__(self, density: float = 0.11, group: int = 16) -> None:
        super().__init__(density)
        self.group = _positive_int("group", group)

    def update_mask(self, name: str, weight: torch.Tensor, density: float | None = None, *,
                    prev: torch.Tensor | None = None) -> torch.Tensor:
        d = self.density if density is None else check_density(density, f"density of {name!r}")
        score = _scores(name, weight, prev)  # (R, C)
        R = score.shape[0]
        order = np.argsort(-score, axis=1, kind="stable")  # per row, best column first
        ranked = np.take_along_axis(score, order, axis=1)
        levels = []  # (score, group start, level, cost)
        for g0 in range(0, R, self.group):
            block = ranked[g0:g0 + self.group]
            ok = block.min(axis=0) >= 0
            for j in np.flatnonzero(ok):
                levels.append((-float(block[:, j].mean()), g0, int(j), block.shape[0]))
        levels.sort()
        k = _keep_count(score.size, d)
        per_group: dict[int, int] = {}
        total = 0
        for _, g0, _j, cost in levels:
            if total == 0 or 2 * (total + cost) <= 2 * k + cost:  # nearer K (or the first)
                per_group[g0] = per_group.get(g0, 0) + 1
                total += cost
        mask = np.zeros(score.shape, dtype=bool)
        for g0, n in per_group.items():
            rows = np.arange(g0, min(R, g0 + self.group))
            mask[rows[:, None], order[g0:g0 + self.group, :n]] = True
        return torch.from_numpy(mask)

    def state_dict(self) -> dict[str, object]:
        return {"kind": "rows", "density": self.density, "group": self.group}

class ClusterPruner(MagnitudePruner):
    """Column-clustered and PE-balanced: each cluster of ``group`` consecutive rows keeps the same
    columns in all its rows, and every PE keeps the same number of weights.

    Clusters share column positions, so a kernel loads one input per kept column and multiplies
    it into a whole SIMD register of the cluster's weights (no gathers). PE balance: row r of a
    plain matrix (unit k of a gate matrix, ``ese.partition``) belongs to PE ``r mod N``, so a
    *block* of ``lcm(G, N)`` consecutive rows of one gate block gives every PE the same number of
    rows; all clusters of a block keep the same number of columns, hence every PE the same number
    of weights in every block (a last, partial block when N does not divide the rows is balanced
    over the PEs it touches only). A cluster's column is scored by the mean |w| of its rows
    (unavailable if any row lost it before); a block's j-th *level* (the j-th best column of each
    of its clusters) by the mean of those scores; levels are taken best first while the total
    stays nearest K, as :class:`RowBalancedPruner` does.
    """

    def __init__(self, density: float = 0.11, group: int = 16, n_pes: int = CLUSTER_PES,
                 cell: str = "lstmp") -> None:
        super().__init__(density)
        self.group = _positive_int("group", group)
        self.n_pes = _positive_int("n_pes", n_pes)
        self.cell = cell  # whose partition says which rows form one gate block

    def update_mask(self, name: str, weight: torch.Tensor, density: float | None = None, *,
                    prev: torch.Tensor | None = None) -> torch.Tensor:
        d = self.density if density is None else check_density(density, f"density of {name!r}")
        score = _scores(name, weight, prev)  # (R, C)
        R, C = score.shape
        blocks = matrix_partition(name, R, self.n_pes, self.cell).gate_blocks
        block_rows = R // blocks  # rows of one gate block (or of the matrix)
        G = self.group
        span = G * self.n_pes // np.gcd(G, self.n_pes)  # lcm: rows of one balanced block
        levels = []  # (-score, block id, level, cost)
        clusters = []  # (block id, row start, row stop, columns best first)
        for b0 in range(0, R, block_rows):
            for s0 in range(b0, b0 + block_rows, span):
                s1 = min(s0 + span, b0 + block_rows)
                members = []
                for c0 in range(s0, s1, G):
                    rows = score[c0:min(c0 + G, s1)]
                    col = np.where(rows.min(axis=0) >= 0, rows.mean(axis=0), -1.0)
                    order = np.argsort(-col, kind="stable")
                    ranked = col[order]
                    clusters.append((s0, c0, min(c0 + G, s1), order))
                    members.append(ranked)
                ranked = np.stack(members)  # (clusters in block, C)
                ok = ranked.min(axis=0) >= 0
                for j in np.flatnonzero(ok):
                    levels.append((-float(ranked[:, j].mean()), s0, int(j), s1 - s0))
        levels.sort()
        k = _keep_count(score.size, d)
        per_block: dict[int, int] = {}
        total = 0
        for _, s0, _j, cost in levels:
            if total == 0 or 2 * (total + cost) <= 2 * k + cost:
                per_block[s0] = per_block.get(s0, 0) + 1
                total += cost
        mask = np.zeros(score.shape, dtype=bool)
        for s0, c0, c1, order in clusters:
            n = per_block.get(s0, 0)
            if n:
                mask[c0:c1, order[:n]] = True
        return torch.from_numpy(mask)

    def state_dict(self) -> dict[str, object]:
        return {"kind": "cluster", "density": self.density, "group": self.group, "n_pes": self.n_pes}


def _share(per_pe: list[np.ndarray], total: int) -> np.ndarray:
    """Split ``total`` kept weights over PEs as evenly as their sizes allow (water filling)."""
    cap = np.array([len(s) for s in per_pe], dtype=np.int64)
    counts = np.zeros(len(per_pe), dtype=np.int64)
    left = total
    while left > 0:
        open_ = np.flatnonzero(counts < cap)
        share = left // len(open_)
        if share == 0:
            # one more for the `left` PEs whose best remaining weight is largest (stable by PE)
            nxt = np.array([per_pe[p][counts[p]] for p in open_])
            for p in open_[np.argsort(-nxt, kind="stable")[:left]]:
                counts[p] += 1
            break
        add = np.minimum(share, cap[open_] - counts[open_])
        counts[open_] += add
        left -= int(add.sum())
    return counts


def _compute(pruner: MagnitudePruner, model: AcousticModel, densities: Mapping[str, float] | None,
             prev: Mapping[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
    names = prunable_names(model)
    unknown = sorted(set(densities or {}) - set(names))
    if unknown:
        raise ConfigError(f"no prunable matrix named {', '.join(map(repr, unknown))}; "
                          f"the model has {', '.join(names)}")
    params = dict(model.named_parameters())
    masks = {}
    for name in names:
        d = (densities or {}).get(name)
        masks[name] = pruner.update_mask(name, params[name], d,
                                         prev=None if prev is None else prev.get(name))
    return masks


def make_pruner(balance: str, density: float = 0.11, cell: str = "lstmp") -> MagnitudePruner:
    """The pruner for ``balance``: BalancedPruner (``pes:N``, over ``cell``'s partition),
    RowBalancedPruner (``rows:G``), ClusterPruner (``cluster:G[,pes:N]``, over ``cell``'s
    partition), else MagnitudePruner (``none``)."""
    cluster = parse_cluster(balance)
    if cluster is not None:
        return ClusterPruner(density, *cluster, cell)
    group = parse_row_group(balance)
    if group is not None:
        return RowBalancedPruner(density, group)
    n_pes = parse_balance(balance)
    return MagnitudePruner(density) if n_pes is None else BalancedPruner(density, n_pes, cell)


def apply_masks(model: AcousticModel, masks: Mapping[str, torch.Tensor]) -> None:
    """Zero the weights outside ``masks`` in place."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, mask in masks.items():
            params[name].mul_(mask.to(params[name].dtype))


def mask_stats(masks: Mapping[str, torch.Tensor], n_pes: int, cell: str = "lstmp") -> dict[str, object]:
    """Density and per-PE non-zeros of every mask, the PEs given by the partition function.

    ``imbalance_max_over_mean`` per matrix is (busiest PE's non-zeros) / (mean over all N PEs,
    idle ones included). The overall figure is sum over matrices of the max over sum of the
    means: the time of running every matrix as its own SpMV, where each waits for its busiest
    PE, relative to perfect balance (1.0 = perfectly balanced).
    """
    matrices: dict[str, dict[str, object]] = {}
    total_nnz = total = 0
    sum_max = sum_mean = 0.0
    for name, mask in masks.items():
        m = mask.cpu().numpy().astype(bool)
        part: Partition = matrix_partition(name, m.shape[0], n_pes, cell)
        per_pe = part.count_per_pe(m.sum(axis=1))  # (N,)
        nnz, mean, top = int(m.sum()), float(per_pe.mean()), int(per_pe.max())
        matrices[name] = {
            "shape": list(m.shape), "density": nnz / m.size, "nnz": nnz,
            "nnz_per_pe": {"min": int(per_pe.min()), "mean": mean, "max": top},
            "imbalance_max_over_mean": top / mean if mean > 0 else float("nan"),
        }
        total_nnz, total = total_nnz + nnz, total + m.size
        sum_max, sum_mean = sum_max + top, sum_mean + mean
    return {"density": total_nnz / total if total else float("nan"), "nnz": total_nnz,
            "weights": total, "n_pes": n_pes, "matrices": matrices,
            "imbalance_max_over_mean": sum_max / sum_mean if sum_mean > 0 else float("nan")}
