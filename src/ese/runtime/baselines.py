"""Baselines of the engine benchmark: PyTorch dense nn.LSTM, torch.sparse CSR and scipy CSR.

Each baseline exposes ``stream(x)`` (one step, (B, D) -> (B, P)) and ``utterance(X)`` ((T, B, D)
-> (T, B, P)), like the engine's Recognizer. The sparse ones run the same LSTMP equations as the
engine (peepholes included) on the same float weights.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch


class TorchDense:
    """``nn.LSTM(D, H, proj_size=P)`` (no peepholes), the issue's baseline; random weights."""

    name = "torch-dense"
    kernel = "torch-lstm-proj"  # nn.LSTM with proj_size: PyTorch's default (non-oneDNN) path

    def __init__(self, D: int, H: int, P: int, B: int) -> None:
        torch.manual_seed(0)
        self.lstm = torch.nn.LSTM(D, H, proj_size=P).eval()
        self.state = (torch.zeros(1, B, P), torch.zeros(1, B, H))

    def weight_bytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.lstm.parameters())

    @torch.no_grad()
    def stream(self, x: np.ndarray) -> torch.Tensor:
        y, self.state = self.lstm(torch.from_numpy(x)[None], self.state)
        return y[0]

    @torch.no_grad()
    def utterance(self, X: np.ndarray) -> torch.Tensor:
        y, self.state = self.lstm(torch.from_numpy(X), self.state)
        return y


class _SparseLSTMP:
    """LSTMP step with sparse products ``mm(W, V)`` for W (R, K) and V (K, B); state (rows, B)."""

    def __init__(self, layer: dict[str, np.ndarray], B: int) -> None:
        H, P = layer["w_ym"].shape[1], layer["w_ym"].shape[0]
        self.H = H
        self.wx, self.wr, self.wym = (self._sparse(layer[k]) for k in ("w_x", "w_r", "w_ym"))
        self.b = self._dense(layer["bias"][:, None])
        pe = layer.get("peephole")
        self.pe = None if pe is None else self._dense(pe[:, :, None])
        self.y, self.c = self._dense(np.zeros((P, B), np.float32)), self._dense(np.zeros((H, B), np.float32))

    def _cell(self, g):
        H, pe, c = self.H, self.pe, self.c
        i, f, gg, o = g[:H], g[H:2 * H], g[2 * H:3 * H], g[3 * H:]
        if pe is not None:
            i, f = i + pe[0] * c, f + pe[1] * c
        c = self._sig(f) * c + self._sig(i) * self._tanh(gg)
        if pe is not None:
            o = o + pe[2] * c
        self.c = c
        self.y = self.mm(self.wym, self._sig(o) * self._tanh(c))
        return self.y

    def stream(self, x: np.ndarray):
        return self._cell(self.mm(self.wx, self._dense(np.ascontiguousarray(x.T))) + self.mm(self.wr, self.y) + self.b)

    def utterance(self, X: np.ndarray):
        T, B, D = X.shape
        xw = self.mm(self.wx, self._dense(np.ascontiguousarray(X.reshape(T * B, D).T)))  # (4H, T*B)
        return [self._cell(xw[:, t * B:(t + 1) * B] + self.mm(self.wr, self.y) + self.b) for t in range(T)]


class TorchSparse(_SparseLSTMP):
    """torch.sparse CSR weights (``torch.sparse.mm``), dense activations."""

    name = "torch-sparse-csr"

    def _sparse(self, w):
        return torch.from_numpy(np.ascontiguousarray(w, np.float32)).to_sparse_csr()

    def _dense(self, a):
        return torch.from_numpy(np.ascontiguousarray(a, np.float32))

    @staticmethod
    def mm(w, v):
        return torch.sparse.mm(w, v) if w.layout == torch.sparse_csr else w @ v

    _sig, _tanh = staticmethod(torch.sigmoid), staticmethod(torch.tanh)

    def weight_bytes(self) -> int:
        return sum(w.crow_indices().nbytes + w.col_indices().nbytes + w.values().nbytes
                   for w in (self.wx, self.wr, self.wym))

    @torch.no_grad()
    def stream(self, x):
        return super().stream(x)

    @torch.no_grad()
    def utterance(self, X):
        return super().utterance(X)


class ScipySparse(_SparseLSTMP):
    """scipy.sparse CSR weights, numpy activations."""

    name = "scipy-csr"

    def _sparse(self, w):
        return sp.csr_matrix(np.asarray(w, np.float32))

    def _dense(self, a):
        return np.ascontiguousarray(a, np.float32)

    @staticmethod
    def mm(w, v):
        return w @ v

    @staticmethod
    def _sig(z):
        return 1.0 / (1.0 + np.exp(-z))

    _tanh = staticmethod(np.tanh)

    def weight_bytes(self) -> int:
        return sum(w.indptr.nbytes + w.indices.nbytes + w.data.nbytes for w in (self.wx, self.wr, self.wym))
