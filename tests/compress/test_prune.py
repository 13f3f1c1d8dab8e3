"""Pruners: magnitude keeps the largest weights, balanced pruning equalises per-PE counts,
statistics come from the partition function, bad input is refused with pinned messages."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ese.compress.prune import (BalancedPruner, MagnitudePruner, apply_masks, make_pruner,
                                mask_stats, parse_balance, prunable_names)
from ese.config import ModelConfig
from ese.errors import CheckpointError, ConfigError
from ese.model.lstmp import AcousticModel
from ese.partition import matrix_partition


def _per_pe(name: str, mask: torch.Tensor, n_pes: int) -> np.ndarray:
    part = matrix_partition(name, mask.shape[0], n_pes)
    return part.count_per_pe(mask.numpy().sum(axis=1))


@settings(max_examples=120, deadline=None)
@given(cells=st.integers(1, 24), cols=st.integers(1, 20), n_pes=st.integers(1, 12),
       density=st.floats(0.01, 1.0), gate=st.booleans(), seed=st.integers(0, 2**16))
def test_balanced_counts_equal_within_one(cells, cols, n_pes, density, gate, seed) -> None:
    name = "layers.0.w_x" if gate else "layers.0.w_ym"
    rows = 4 * cells if gate else cells
    w = torch.from_numpy(np.random.default_rng(seed).normal(size=(rows, cols)))
    mask = BalancedPruner(density, n_pes).update_mask(name, w)
    k = max(1, min(w.numel(), round(density * w.numel())))
    assert int(mask.sum()) == k  # the matrix hits its density exactly
    counts = _per_pe(name, mask, n_pes)
    capacity = matrix_partition(name, rows, n_pes).rows_per_pe * cols
    assert np.all(counts <= capacity)
    # equal +-1, except PEs whose whole sub-matrix is kept (N does not divide, or idle PEs)
    below = counts[counts < capacity]
    top = counts.max()
    assert np.all(top - below <= 1), (counts, capacity)
    if np.all(capacity == capacity[0]):  # N divides the rows: strictly equal +-1
        assert counts.max() - counts.min() <= 1
    # inside each PE the kept weights are its largest ones
    part = matrix_partition(name, rows, n_pes)
    for pe_rows in part.rows_of_pe:
        sub_w, sub_m = w.numpy()[pe_rows], mask.numpy()[pe_rows]
        kept, dropped = np.abs(sub_w[sub_m]), np.abs(sub_w[~sub_m])
        if len(kept) and len(dropped):
            assert kept.min() >= dropped.max()


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 30), cols=st.integers(1, 30), density=st.floats(0.01, 1.0),
       seed=st.integers(0, 2**16))
def test_magnitude_keeps_the_largest_weights(rows, cols, density, seed) -> None:
    w = torch.from_numpy(np.random.default_rng(seed).normal(size=(rows, cols)))
    mask = MagnitudePruner(density).update_mask("layers.0.w_ym", w)
    assert int(mask.sum()) == max(1, min(w.numel(), round(density * w.numel())))
    if (~mask).any():
        assert w[mask].abs().min() >= w[~mask].abs().max()


def test_ties_and_exact_counts() -> None:
    w = torch.ones(4, 5)
    mask = MagnitudePruner(0.5).update_mask("w_ym", w)
    assert mask.flatten().tolist() == [True] * 10 + [False] * 10  # ties: lower index first
    assert int(MagnitudePruner(1e-6).update_mask("w_ym", w).sum()) == 1  # at least one weight


def test_balanced_spreads_where_magnitude_concentrates() -> None:
    # rows of PE 0 (even rows) hold all the large weights: magnitude pruning puts every kept
    # weight in PE 0, balanced pruning gives both PEs half
    w = torch.ones(8, 10) * 0.01
    w[0::2] = 1.0
    mag = MagnitudePruner(0.25).update_mask("w_ym", w)
    bal = BalancedPruner(0.25, 2).update_mask("w_ym", w)
    assert _per_pe("w_ym", mag, 2).tolist() == [20, 0]
    assert _per_pe("w_ym", bal, 2).tolist() == [10, 10]
    assert mask_stats({"layers.0.w_ym": mag}, 2)["imbalance_max_over_mean"] == 2.0
    assert mask_stats({"layers.0.w_ym": bal}, 2)["imbalance_max_over_mean"] == 1.0


def test_prev_mask_is_never_revived() -> None:
    rng = np.random.default_rng(0)
    w = torch.from_numpy(rng.normal(size=(16, 6)))
    for pruner in (MagnitudePruner(), BalancedPruner(n_pes=4)):
        first = pruner.update_mask("w_x", w, 0.5)
        second = pruner.update_mask("w_x", w * first, 0.25, prev=first)
        assert not (second & ~first).any()
        # asking for more than the previous mask holds keeps exactly the previous mask
        assert torch.equal(pruner.update_mask("w_x", w * second, 0.9, prev=second), second)


def test_compute_masks_covers_lstm_matrices_only() -> None:
    torch.manual_seed(0)
    model = AcousticModel(ModelConfig(input_dim=6, hidden=8, proj=4, layers=2, num_classes=5))
    names = prunable_names(model)
    assert names == ["layers.0.w_x", "layers.0.w_r", "layers.0.w_ym",
                     "layers.1.w_x", "layers.1.w_r", "layers.1.w_ym"]
    pruner = BalancedPruner(0.5, n_pes=3)
    masks = pruner.compute_masks(model, {"layers.1.w_r": 0.25})
    assert set(masks) == set(names)
    stats = mask_stats(masks, 3)
    assert stats["matrices"]["layers.1.w_r"]["density"] == 0.25
    assert stats["matrices"]["layers.0.w_x"]["density"] == 0.5
    assert stats["matrices"]["layers.0.w_x"]["nnz_per_pe"] == {"min": 32, "mean": 32.0, "max": 32}
    dense_bias = model.layers[0].bias.detach().clone()
    apply_masks(model, masks)
    assert torch.equal(model.layers[0].bias, dense_bias)
    assert int((model.layers[0].w_x != 0).sum()) == int(masks["layers.0.w_x"].sum())
    with pytest.raises(ConfigError, match=r"no prunable matrix named 'layers.0.bias'"):
        pruner.compute_masks(model, {"layers.0.bias": 0.5})


def test_stats_count_idle_pes() -> None:
    mask = torch.ones(3, 2, dtype=torch.bool)  # 3 rows over 4 PEs: PE 3 idle
    s = mask_stats({"layers.0.w_ym": mask}, 4)["matrices"]["layers.0.w_ym"]
    assert s["nnz_per_pe"] == {"min": 0, "mean": 1.5, "max": 2}
    assert s["imbalance_max_over_mean"] == pytest.approx(4 / 3)


@pytest.mark.parametrize("density", [0, 0.0, 1.5, -0.1, float("nan")])
def test_density_outside_unit_interval_is_refused(density) -> None:
    with pytest.raises(ConfigError, match=r"density must be in \(0, 1\] \(the fraction of weights "
                                          rf"kept\), not {re_repr(density)}"):
        MagnitudePruner(density)
    with pytest.raises(ConfigError, match=r"density of 'w_ym' must be in \(0, 1\]"):
        BalancedPruner(0.5, 2).update_mask("w_ym", torch.ones(2, 2), density)


def re_repr(value: float) -> str:
    import re
    return re.escape(repr(value))


def test_bad_pruner_arguments() -> None:
    with pytest.raises(ConfigError, match=r"density must be a number in \(0, 1\], not 'half'"):
        MagnitudePruner("half")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"n_pes must be a positive integer, not 0"):
        BalancedPruner(0.5, 0)
    with pytest.raises(ConfigError, match=r"balance must be 'none' or 'pes:N' with N >= 1 PEs, "
                                          r"not 'pes:0'"):
        parse_balance("pes:0")
    with pytest.raises(ConfigError, match=r"not 'rows'"):
        make_pruner("rows")
    assert parse_balance("PES:32") == 32 and parse_balance("none") is None
    assert isinstance(make_pruner("none"), MagnitudePruner)
    assert make_pruner("pes:8").state_dict() == {"kind": "balanced", "density": 0.11, "n_pes": 8}


def test_nan_weights_are_a_checkpoint_error() -> None:
    w = torch.ones(4, 4)
    w[1, 2] = math.nan
    with pytest.raises(CheckpointError, match=r"'layers.0.w_r' holds NaN or inf weights; cannot "
                                              r"prune a diverged model"):
        BalancedPruner(0.5, 2).update_mask("layers.0.w_r", w)
    with pytest.raises(CheckpointError, match=r"mask of 'w_ym' has shape \(2, 2\), the weight \(4, 4\)"):
        MagnitudePruner().update_mask("w_ym", torch.ones(4, 4), prev=torch.ones(2, 2, dtype=torch.bool))


def test_row_balanced_pruner_equal_counts_per_simd_group() -> None:
    from ese.compress.prune import RowBalancedPruner, parse_row_group
    torch.manual_seed(0)
    w = torch.randn(40, 24)  # 40 rows: groups of 16, 16 and a partial one of 8
    pruner = make_pruner("rows:16", 0.25)
    assert isinstance(pruner, RowBalancedPruner) and parse_row_group("ROWS:16") == 16
    assert parse_balance("rows:16") is None  # no PE balance: statistics at report_pes
    mask = pruner.update_mask("layers.0.w_r", w)
    counts = mask.sum(dim=1)
    for g0 in range(0, 40, 16):
        assert len(set(counts[g0:g0 + 16].tolist())) == 1  # no padding in a 16-row slice
    assert abs(int(mask.sum()) - round(0.25 * w.numel())) <= 16 // 2  # K rounded to whole levels
    again = pruner.update_mask("layers.0.w_r", w, 0.1, prev=mask)
    assert not bool((again & ~mask).any())  # iterative pruning never revives a weight
    assert pruner.state_dict() == {"kind": "rows", "density": 0.25, "group": 16}
    with pytest.raises(ConfigError, match=r"group must be a positive integer, not 0"):
        RowBalancedPruner(0.5, 0)
    with pytest.raises(ConfigError, match=r"'rows:G'"):
        parse_balance("rows:0")


@pytest.mark.parametrize(("group", "n_pes", "cells"), [(4, 8, 20), (8, 4, 24), (16, 32, 64)])
def test_cluster_pruner_shares_columns_and_balances_pes(group, n_pes, cells) -> None:
    from ese.compress.prune import ClusterPruner, parse_cluster
    from ese.runtime.patterns import detect
    torch.manual_seed(1)
    balance = f"cluster:{group},pes:{n_pes}"
    pruner = make_pruner(balance, 0.2)
    assert isinstance(pruner, ClusterPruner) and parse_cluster(balance) == (group, n_pes)
    assert parse_balance(balance) == n_pes  # statistics over the PEs it balances
    for name, rows in (("layers.0.w_r", 4 * cells), ("layers.0.w_ym", cells)):
        w = torch.randn(rows, 30)
        mask = pruner.update_mask(name, w)
        m = mask.numpy()
        for c0 in range(0, rows, group):  # every cluster keeps one column set in all its rows
            assert (m[c0:c0 + group] == m[c0]).all()
        per_pe = _per_pe(name, mask, n_pes)
        full = (rows // (4 if "w_r" in name else 1)) % np.lcm(group, n_pes) == 0
        if full:  # whole balanced blocks: every PE keeps exactly the same count
            assert per_pe.min() == per_pe.max() > 0
        assert abs(int(m.sum()) - round(0.2 * m.size)) <= np.lcm(group, n_pes) * 2 // 2 + 1
        again = pruner.update_mask(name, w, 0.1, prev=mask)
        assert not bool((again & ~mask).any())  # never revives a weight
        assert detect([m]) == f"cluster:{max(g for g in (4, 8, 16) if g <= group and group % g == 0)}"
    assert pruner.state_dict() == {"kind": "cluster", "density": 0.2, "group": group, "n_pes": n_pes}


def test_cluster_balance_refused_with_one_line() -> None:
    from ese.compress.prune import parse_cluster
    assert parse_balance("cluster:16") == 32  # the paper's PEs by default
    with pytest.raises(ConfigError, match=r"must divide the PE count 32"):
        parse_cluster("cluster:12")
    with pytest.raises(ConfigError, match=r"cluster size G must be a positive integer"):
        parse_cluster("cluster:x")
    with pytest.raises(ConfigError, match=r"expected 'cluster:G' or 'cluster:G,pes:N'"):
        parse_cluster("cluster:8,pe:4")
