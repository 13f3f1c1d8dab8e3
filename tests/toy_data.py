"""Toy acoustic data shared by the model and pruning tests: class prototypes plus noise.

Each utterance is a few segments of phones that are their own 48- and 39-class, each segment a
few frames of its class prototype plus Gaussian noise, so a tiny model learns it in seconds.
"""

from __future__ import annotations

import numpy as np

from ese.data.dataset import FeatureSet, Utterance
from ese.data.phones import INDEX_48

TOY_PHONES = ("aa", "b", "d", "f", "s", "iy")
TOY_DIM = 12


def toy_featureset(name: str, n_utts: int, seed: int, *, noise: float = 0.6) -> FeatureSet:
    protos = np.random.default_rng(1234).normal(size=(len(TOY_PHONES), TOY_DIM))
    rng = np.random.default_rng(seed)
    utts = []
    for k in range(n_utts):
        segs = rng.integers(0, len(TOY_PHONES), size=int(rng.integers(5, 10)))
        feats, labels, phones = [], [], []
        for s in segs:
            n = int(rng.integers(3, 8))
            feats.append(protos[s] + noise * rng.normal(size=(n, TOY_DIM)))
            labels += [INDEX_48[TOY_PHONES[s]]] * n
            phones.append(TOY_PHONES[s])
        utts.append(Utterance(f"{name}{k:03d}", f"spk{k % 3}",
                              np.concatenate(feats).astype(np.float32),
                              np.asarray(labels, dtype=np.int64), tuple(phones)))
    return FeatureSet(name, utts)


def params_differ(a, b) -> list[str]:
    """Names of the parameters of two torch modules that are not bit-identical."""
    import torch
    return [n for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()) if not torch.equal(p, q)]
