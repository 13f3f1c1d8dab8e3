"""Streaming API: ``Recognizer`` keeps the state of B streams and runs one frame per stream a step."""

from __future__ import annotations

from typing import Callable

import numba
import numpy as np

from ese.runtime import kernels_fixed as KF
from ese.runtime import kernels_float as KL
from ese.runtime.errors import EngineError
from ese.runtime.layout import LANES, gate_row_order, thread_groups
from ese.runtime.weights import LayerWeights


class _State:
    """Buffers of one layer for B streams (allocated once; the kernels only write into them)."""

    def __init__(self, L: LayerWeights, B: int, threads: int, fixed: bool) -> None:
        shape = (lambda n: (n,)) if B == 1 else (lambda n: (n, B))
        act = np.int32 if fixed else np.float32
        wide = np.int64 if fixed else np.float32
        self.y = np.zeros((2,) + shape(L.pp), dtype=act)  # double buffer: y_{t-1}, y_t
        self.cur = 0
        self.c = np.zeros(shape(L.hp), dtype=wide)
        self.m = np.zeros(shape(L.hp), dtype=act)
        self.acc = np.zeros(shape(4 * L.hp), dtype=wide)
        self.acc_y = np.zeros(shape(L.pp), dtype=wide)
        self.groups = thread_groups(L.hp // LANES, threads)
        self.pgroups = thread_groups(L.pp // LANES, threads)
        self.scratch = np.zeros((max(len(self.groups), len(self.pgroups)), 2 * max(B, LANES)), dtype=wide)
        self.no_xw = np.zeros((1, 1), dtype=wide)

    def reset(self, b: int | None = None) -> None:
        for arr in (self.y, self.c, self.m, self.acc, self.acc_y):
            if b is None:
                arr[...] = 0
            else:
                arr[..., b] = 0


class Recognizer:
    """Frames of ``streams`` streams arrive one step at a time; returns per-frame posteriors.

    ``push(frames)`` takes (B, D) float features (one frame per stream) and returns (B, C)
    log-probabilities of this step. The model's output delay is not applied here: the posterior
    of input frame t comes out at step t + ``engine.output_delay``. ``reset(b)`` restarts stream
    b (or all). Streams are independent: stream b's results do not depend on the others.
    """

    def __init__(self, engine, streams: int = 1) -> None:
        if isinstance(streams, bool) or not isinstance(streams, (int, np.integer)) or streams < 1:
            raise EngineError(f"streams must be a positive integer, not {streams!r}")
        self.engine = engine
        self.B = int(streams)
        self.fixed = engine.mode == "fixed"
        self.K = KF if self.fixed else KL
        self.threads = engine.n_threads()
        self.states = [_State(L, self.B, self.threads, self.fixed) for L in engine.layers]
        self.in_dtype = np.int32 if self.fixed else np.float32
        self.x = np.zeros((engine.input_dim,) if self.B == 1 else (engine.input_dim, self.B), self.in_dtype)
        if self.fixed:
            q = engine.qmodel
            self._luts = (np.ascontiguousarray(q.luts["sigmoid"], np.int64),
                          np.ascontiguousarray(q.luts["tanh"], np.int64))
            fmt = q.input_format
            self._in_range = (fmt.lo, fmt.hi)

    # ---- public API -----------------------------------------------------------------------
    def reset(self, stream: int | None = None) -> None:
        """Zero the state of ``stream`` (all streams when None)."""
        if stream is not None and not 0 <= stream < self.B:
            raise EngineError(f"stream {stream} does not exist (0..{self.B - 1})")
        for st in self.states:
            st.reset(None if self.B == 1 else stream)

    def push(self, frames: np.ndarray) -> np.ndarray:
        """One float frame per stream (B, D) (or (D,) for one stream) -> log-probs (B, C)."""
        frames = self.engine.check_features(frames, "frames")
        frames = frames.reshape(-1, frames.shape[-1])
        x = self.engine.quantize_input(frames)
        return self.engine.log_probs(self.step_layers(x))

    def step_layers(self, x: np.ndarray,
                    record: Callable[[int, "_State"], None] | None = None) -> np.ndarray:
        """One step of the LSTM stack on engine-typed input (B, D) -> last layer y (B, Pp) view."""
        x = np.asarray(x)
        if x.shape != (self.B, self.engine.input_dim):
            raise EngineError(f"frames have shape {tuple(x.shape)}; this recognizer takes "
                              f"({self.B}, {self.engine.input_dim}): one frame per stream")
        if self.fixed:
            x = self._check_int(x)
        self.x[...] = x[0] if self.B == 1 else x.T
        h = self.x
        numba.set_num_threads(self.threads)
        for k, (L, st) in enumerate(zip(self.engine.layers, self.states)):
            h = self._step(L, st, h, st.no_xw, 0, False)
            if record is not None:
                record(k, st)
        return h[None] if self.B == 1 else h.T

    def run_frames(self, X: np.ndarray) -> np.ndarray:
        """Utterance mode over (T, B, D) engine-typed frames -> (B, T, P) last-layer outputs.

        Per chunk of CHUNK frames, each layer first computes W_x x_t of all its frames (one
        batched sparse product), then runs the recurrence step by step.
        """
        from ese.runtime.engine import CHUNK
        T, B, D = X.shape
        if B != self.B or D != self.engine.input_dim:
            raise EngineError(f"frames have shape {X.shape}; expected (T, {self.B}, {self.engine.input_dim})")
        if self.fixed:
            X = self._check_int(X)
        P = self.engine.layers[-1].proj
        out = np.zeros((B, T, P), dtype=self.in_dtype)
        numba.set_num_threads(self.threads)
        for t0 in range(0, T, CHUNK):
            h = np.ascontiguousarray(X[t0:t0 + CHUNK], dtype=self.in_dtype)  # (Tc, B, D)
            Tc = h.shape[0]
            for L, st in zip(self.engine.layers, self.states):
                cols = np.ascontiguousarray(h.transpose(2, 0, 1).reshape(h.shape[2], Tc * B))
                xw = np.empty((4 * L.hp, Tc * B), dtype=st.acc.dtype)
                w = L.w_x
                self.K.input_products(st.groups, w.csr_ptr, w.csr_cols, w.csr_vals, cols, xw)
                ys = np.empty((Tc, B, L.pp), dtype=self.in_dtype)
                for t in range(Tc):
                    y = self._step(L, st, self.x, xw, t * B, True)
                    ys[t] = y if B == 1 else y.T
                h = ys
            out[:, t0:t0 + Tc] = h.transpose(1, 0, 2)[:, :, :P]
        return out

    def trace(self, x_q: np.ndarray) -> list[dict[str, np.ndarray]]:
        """Fixed point, one stream: per layer acc (T, 4H), c, m (T, H), acc_y, y (T, P) of every
        step, in the reference model's order (compare with ``ReferenceModel.run``)."""
        if self.B != 1:
            raise EngineError("trace runs one stream")
        recs = [{s: [] for s in ("acc", "c", "m", "acc_y", "y")} for _ in self.engine.layers]
        orders = [gate_row_order(L.hidden) for L in self.engine.layers]

        def record(k: int, st: _State) -> None:
            L, order = self.engine.layers[k], orders[k]
            acc = np.zeros(4 * L.hidden, dtype=np.int64)
            acc[order[order >= 0]] = st.acc[order >= 0]
            r = recs[k]
            r["acc"].append(acc)
            r["c"].append(st.c[:L.hidden].astype(np.int64))
            r["m"].append(st.m[:L.hidden].astype(np.int64))
            r["acc_y"].append(st.acc_y[:L.proj].astype(np.int64))
            r["y"].append(st.y[st.cur][:L.proj].astype(np.int64))

        for x in np.asarray(x_q):
            self.step_layers(x[None], record)
        return [{s: np.array(v) for s, v in r.items()} for r in recs]

    # ---- internals ------------------------------------------------------------------------
    def _check_int(self, x: np.ndarray) -> np.ndarray:
        if x.dtype.kind not in "iu":
            raise EngineError(f"fixed-point input must be integers (quantize first), not {x.dtype}")
        lo, hi = self._in_range
        if x.size and (x.min() < lo or x.max() > hi):
            raise EngineError(f"fixed-point input holds values outside [{lo}, {hi}]")
        return x

    def _step(self, L: LayerWeights, st: _State, x: np.ndarray, xw: np.ndarray, col: int,
              use_xw: bool) -> np.ndarray:
        lay = "sell" if self.B == 1 else "csr"
        mats = [getattr(m, f"{lay}_{a}") for m in (L.w_x, L.w_r) for a in ("ptr", "cols", "vals")]
        pm = L.w_ym
        proj = [getattr(pm, f"{lay}_{a}") for a in ("ptr", "cols", "vals")]
        kern = self.K.step_one if self.B == 1 else self.K.step_many
        y_in, y_out = st.y[st.cur], st.y[1 - st.cur]
        args = (st.groups, st.pgroups, x, y_in, xw, col, use_xw, *mats, L.bias, L.peephole,
                L.has_peep, st.c, st.m, st.acc, st.scratch, *proj, y_out)
        if self.fixed:
            kern(*args, st.acc_y, L.shifts, *self._luts)
        else:
            kern(*args)
        st.cur = 1 - st.cur
        return y_out
