"""Baselines of the engine benchmark: PyTorch dense (nn.LSTM / nn.GRU), torch.sparse CSR and scipy CSR.

Each baseline exposes ``stream(x)`` (one step, (B, D) -> (B, P)) and ``utterance(X)`` ((T, B, D)
-> (T, B, P)), like the engine's Recognizer. The sparse ones run the cell's own float step
(``ese.cell``) on the same float weights as the engine.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from ese.cell import CellSpec, cell_spec
from ese.runtime.weights import engine_matrices


class TorchDense:
    """PyTorch's dense layer of the cell, the issue's baseline, random weights: the LSTMP's
    ``nn.LSTM(D, H, proj_size=P)`` (no peepholes), the GRU's ``nn.GRU(D, H)``."""

    name = "torch-dense"

    def __init__(self, D: int, H: int, P: int, B: int, cell: str | CellSpec = "lstmp") -> None:
        torch.manual_seed(0)
        gru = cell_spec(cell).name == "gru"
        # nn.LSTM with proj_size: PyTorch's default (non-oneDNN) path; nn.GRU: its fused GRU cell
        self.kernel = "torch-gru" if gru else "torch-lstm-proj"
        self.lstm = (torch.nn.GRU(D, H) if gru else torch.nn.LSTM(D, H, proj_size=P)).eval()
        self.state = torch.zeros(1, B, H) if gru else (torch.zeros(1, B, P), torch.zeros(1, B, H))

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


class _SparseCell:
    """One layer of any cell with sparse products ``mm(W, V)`` for W (R, K) and V (K, B): the
    input and recurrent matrices by accumulator row and the output matrix
    (:func:`ese.runtime.weights.engine_matrices`), the cell's own float step
    (``CellSpec.float_step``); state batch-major (B, rows)."""

    def __init__(self, layer: dict[str, np.ndarray], B: int, cell: str | CellSpec = "lstmp") -> None:
        self.spec = spec = cell_spec(cell)
        H = np.asarray(layer["bias"]).shape[0] // len(spec.acc_blocks)
        w_x, w_r, w_y = engine_matrices(spec, layer, H, np.float32)
        self.wx, self.wr = self._sparse(w_x), self._sparse(w_r)
        self.wy = self._sparse(w_y) if spec.projection is not None else None
        self.b = self._dense(layer["bias"])
        self.vec = {v.name: self._dense(layer[v.name]) for v in spec.vectors
                    if v.rows is not None and layer.get(v.name) is not None}
        self.y = self._dense(np.zeros((B, w_y.shape[0]), np.float32))
        self.state = {name: self._dense(np.zeros((B, H), np.float32)) for name in spec.state}

    def _cell(self, acc_t):
        """acc_t (rows, B) without the bias -> y (B, P)."""
        signals, self.state = self.spec.float_step(self, acc_t.T + self.b, self.state, self.vec)
        out = signals[self.spec.output]
        self.y = out if self.wy is None else self.mm(self.wy, out.T).T
        return self.y

    def stream(self, x: np.ndarray):
        return self._cell(self.mm(self.wx, self._dense(np.ascontiguousarray(x.T))) + self.mm(self.wr, self.y.T))

    def utterance(self, X: np.ndarray):
        T, B, D = X.shape
        xw = self.mm(self.wx, self._dense(np.ascontiguousarray(X.reshape(T * B, D).T)))  # (rows, T*B)
        return [self._cell(xw[:, t * B:(t + 1) * B] + self.mm(self.wr, self.y.T)) for t in range(T)]

    def weight_bytes(self) -> int:
        return sum(self._nbytes(w) for w in (self.wx, self.wr, self.wy) if w is not None)


class TorchSparse(_SparseCell):
    """torch.sparse CSR weights (``torch.sparse.mm``), dense activations."""

    name = "torch-sparse-csr"

    def _sparse(self, w):
        return torch.from_numpy(np.ascontiguousarray(w, np.float32)).to_sparse_csr()

    def _dense(self, a):
        return torch.from_numpy(np.ascontiguousarray(a, np.float32))

    @staticmethod
    def mm(w, v):
        return torch.sparse.mm(w, v) if w.layout == torch.sparse_csr else w @ v

    sigmoid, tanh = staticmethod(torch.sigmoid), staticmethod(torch.tanh)

    @staticmethod
    def split(a, n):
        return a.chunk(n, dim=-1)

    @staticmethod
    def _nbytes(w) -> int:
        return w.crow_indices().nbytes + w.col_indices().nbytes + w.values().nbytes

    @torch.no_grad()
    def stream(self, x):
        return super().stream(x)

    @torch.no_grad()
    def utterance(self, X):
        return super().utterance(X)


class ScipySparse(_SparseCell):
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
    def sigmoid(z):
        return 1.0 / (1.0 + np.exp(-z))

    tanh = staticmethod(np.tanh)

    @staticmethod
    def split(a, n):
        return np.split(a, n, axis=-1)

    @staticmethod
    def _nbytes(w) -> int:
        return w.indptr.nbytes + w.indices.nbytes + w.data.nbytes
