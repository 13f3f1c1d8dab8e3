"""Streaming API: ``Recognizer`` keeps the state of B streams and runs one frame per stream a step."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ese.runtime import cells
from ese.runtime import kernels_fixed as KF
from ese.runtime import kernels_float as KL
from ese.runtime import kernels_cluster as KC
from ese.runtime import kernels_int16 as KI
from ese.runtime import kernels_pairs as KPR
from ese.runtime import kernels_perm as KP
from ese.runtime.errors import EngineError
from ese.runtime.layout import LANES, aligned_zeros, gate_row_order, stream_vectors, thread_groups
from ese.runtime.weights import LayerWeights
from ese.threads import numba_threads

NARROW = True  # fixed point, one stream: int32 products where they cannot overflow (kernels_int16)
CHUNK = 64  # frames per input-product batch in one-stream utterance mode: xw stays in cache


class _State:
    """Buffers of one layer for B streams (allocated once; the kernels only write into them).

    One stream: ``z`` = [x_t; y_{t-1}; spare] is the gate input (fixed point: pre-shifted to
    Fsum), ``zr`` = [y_{t-1}; spare] in utterance mode; vectors in the model's row order with a
    spare last slot for padding rows. Several streams: feature-major (rows, B) arrays in the
    cell-group order of :mod:`ese.runtime.layout`, ``y`` double-buffered. ``c`` is the cell's
    state (the LSTMP's c, the GRU's h), ``m`` the output of its element-wise step (the output
    matrix's input), ``acc`` its accumulators (``L.blocks`` per cell).
    """

    def __init__(self, L: LayerWeights, B: int, threads: int, fixed: bool, narrow=None, clusters=None,
                 scratch: int = 6, perm=None, pairs=None) -> None:
        act = np.int32 if fixed else np.float32
        wide = np.int64 if fixed else np.float32
        self.no_xw = np.zeros((1, 1), dtype=wide)
        self.one = B == 1
        self.narrow = narrow  # fixed point, one stream: kernels_int16.NarrowPlan (int32 z and m)
        self.cl = clusters  # one stream, cluster:G model: {gx, gr, gp} ClusterMatrix (raw int16 z, m)
        self.perm = perm  # fixed point, one stream: kernels_perm.PermLayer (raw int16 z, m; y at y_off)
        self.pairs = pairs  # fixed point, many streams: kernels_pairs.PairLayer (int16 y, m; Bp columns)
        self.pair_args = None  # the pair kernel's arguments, gathered on the first step
        self.y_off = L.input_dim  # where y_{t-1} starts in z
        if self.one and perm is not None:
            self._perm_buffers(L, perm, fixed)
            return
        if self.one:
            D, H, P = L.input_dim, L.hidden, L.proj
            zt = np.int16 if (clusters is not None and fixed) else np.int32 if narrow is not None else wide
            # threads write parts of these side by side: aligned, so no line straddles two threads
            self.z = aligned_zeros((D + P + 1,), zt)
            self.zr = aligned_zeros((P + 1,), zt)
            self.acc = aligned_zeros((L.blocks * H + 1,), wide)
            self.c = aligned_zeros((H,), wide)
            self.m = aligned_zeros((H,), zt)
            self.y_out = aligned_zeros((P + 1,), act)
            self.acc_y = aligned_zeros((P + 1,), wide)
            n = min(threads, max(1, H // LANES))
            self.gsl = thread_groups(L.gx.ptr.size - 1, n)
            self.rsl = thread_groups(L.gr.ptr.size - 1, n)
            self.psl = thread_groups(L.gp.ptr.size - 1, n)
            self.cells = np.linspace(0, H, len(self.gsl) + 1).astype(np.int64)
            self.scratch = aligned_zeros((len(self.gsl), LANES), wide)  # per-thread rows: whole lines
            self.s32 = aligned_zeros((len(self.gsl), 2 * LANES), np.int32)
            if clusters is not None:
                self.gcl = thread_groups(clusters["gx"].n_clusters, n)
                self.rcl = thread_groups(clusters["gr"].n_clusters, n)
                self.pcl = thread_groups(clusters["gp"].n_clusters, n)
                self.s64 = aligned_zeros((len(self.gsl), 2 * LANES), np.int64)
            self.groups = thread_groups(L.hp // LANES, threads)  # utterance-mode W_x X
            self.order = gate_row_order(H, L.blocks)
            return
        # pairs: int16 activations with the streams padded to Bp; the padding streams are computed like
        # the others (their inputs are 0) and never read
        Bp, act = (KPR.padded_streams(B), np.int16) if pairs is not None else (B, act)
        self.y = aligned_zeros((2, L.pp, Bp), act)  # double buffer: y_{t-1}, y_t
        self.cur = 0
        self.c = aligned_zeros((L.hp, Bp), wide)  # pairs: the padding streams run too (and are ignored)
        self.m = aligned_zeros((L.hp, Bp), act)
        self.acc = aligned_zeros((L.blocks * L.hp, Bp), wide)  # fixed point: per-thread scratch rows
        self.acc_y = aligned_zeros((L.pp, Bp), wide)
        self.groups = thread_groups(L.hp // LANES, threads)
        self.pgroups = thread_groups(L.pp // LANES, threads)
        # per thread 2 B (the x and y gate sums); fixed point also the element-wise step's scratch
        rows = max(len(self.groups), len(self.pgroups))
        self.scratch = aligned_zeros((rows, (max(2, scratch) if fixed else 2) * B), wide)
        if not fixed or pairs is not None:  # kernels whose element-wise step takes a group of cells at once
            self.group_vec = stream_vectors(L.vec, L.has_vec, Bp)
        if pairs is not None:  # the threads' exact x and y sums
            self.s64 = aligned_zeros((rows, 2, Bp), np.int64)  # a thread's sums: whole cache lines
            self.scratch = aligned_zeros((rows, max(2, scratch) * LANES * Bp), wide)
            self.taken = KPR.steal_counters(rows)

    def _perm_buffers(self, L: LayerWeights, perm, fixed: bool) -> None:
        """One stream on ``perm64`` / ``perm32``: inputs laid out by whole blocks (x, zeros, y, zeros);
        every buffer 64-byte aligned, so that the threads' parts (cells, output rows, sums) never
        share a cache line."""
        H, P = L.hidden, L.proj
        z_t, wide, act = (np.int16, np.int64, np.int32) if fixed else (np.float32, np.float32, np.float32)
        self.y_off = perm.y_off
        self.z = aligned_zeros((perm.gx.n_cols,), z_t)
        self.zr = aligned_zeros((perm.gr.n_cols,), z_t)
        self.m = aligned_zeros((perm.gp.n_cols,), z_t)
        self.acc = aligned_zeros((L.blocks * H + 1,), wide)
        self.c = aligned_zeros((H,), wide)
        self.y_out = aligned_zeros((P + 1,), act)
        self.acc_y = aligned_zeros((P + 1,), wide)
        n = perm.gx.slices.shape[0]
        self.a32 = aligned_zeros((n, 2 * LANES), np.int32 if fixed else np.float32)
        self.a64 = aligned_zeros((n, 2 * LANES), np.int64)
        self.no_xw = np.zeros((1, 1), dtype=wide)
        self.stream_args = None  # the streaming kernel's arguments (Recognizer._run_perm)
        self.groups = thread_groups(L.hp // LANES, n)  # utterance-mode W_x X
        self.order = gate_row_order(H, L.blocks)

    def buffer(self, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        """A scratch array reused across calls (utterance mode), reallocated only on a new shape."""
        buf = self._buffers.get(name) if hasattr(self, "_buffers") else None
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            if not hasattr(self, "_buffers"):
                self._buffers: dict[str, np.ndarray] = {}
            buf = self._buffers[name] = np.empty(shape, dtype=dtype)
        return buf

    def reset(self, b: int | None = None) -> None:
        if self.one:
            for arr in (self.z, self.zr, self.acc, self.c, self.m, self.y_out, self.acc_y):
                arr[...] = 0
            return
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
    ``engine`` is an :class:`ese.runtime.engine.Engine`, used by its attributes only: the engine
    imports this module, never the other way round.
    """

    def __init__(self, engine, streams: int = 1) -> None:
        if isinstance(streams, bool) or not isinstance(streams, (int, np.integer)) or streams < 1:
            raise EngineError(f"streams must be a positive integer, not {streams!r}")
        self.engine = engine
        self.B = int(streams)
        self.fixed = engine.mode == "fixed"
        self.K = KF if self.fixed else KL
        self.threads = engine.n_threads()
        plans = [None] * len(engine.layers)
        cls = engine.clusters if (self.B == 1 and engine.clusters) else [None] * len(engine.layers)
        perms = engine.perm_layers(self.threads) if (self.B == 1 and not engine.clusters) else None
        perms = perms or [None] * len(engine.layers)
        if self.fixed and self.B == 1 and NARROW and not engine.clusters:
            plans = [None if pl is not None else KI.narrow_plan(L, ql, engine.qmodel, k == 0)
                     for k, (L, ql, pl) in enumerate(zip(engine.layers, engine.qmodel.layers, perms))]
        pairs = engine.pair_layers() if (self.fixed and self.B > 1) else None
        self.pairs = pairs is not None
        pairs = pairs or [None] * len(engine.layers)
        scratch = cells.engine_cell(engine.spec).scratch
        self.states = [_State(L, self.B, self.threads, self.fixed, p, c, scratch, pl, pr)
                       for L, p, c, pl, pr in zip(engine.layers, plans, cls, perms, pairs)]
        self.in_dtype = np.int32 if self.fixed else np.float32
        if self.pairs:  # the layer-0 input of many streams, int16 and padded like the layers' arrays
            self.x = aligned_zeros((engine.input_dim, KPR.padded_streams(self.B)), np.int16)
        else:
            self.x = np.zeros((engine.input_dim, self.B), self.in_dtype)
        if self.fixed:
            q = engine.qmodel
            self._luts = (np.ascontiguousarray(q.luts["sigmoid"], np.int64),
                          np.ascontiguousarray(q.luts["tanh"], np.int64))
            fmt = q.input_format
            self._in_range = (fmt.lo, fmt.hi)
        # one stream with every layer on perm64/perm32: the streaming step takes the short path
        self._perm_stream = self.B == 1 and all(st.perm is not None for st in self.states)

    @property
    def kernel(self) -> str:
        """Name of the kernels this recognizer runs (reported by ``ese bench``)."""
        kind = "sell16-gather" if self.B == 1 else "csr-rows-x-batch"
        if self.B == 1 and self.states[0].cl is not None:
            G = self.states[0].cl["gx"].G
            return f"cluster{G}-pairs-i16" if self.fixed else f"cluster{G}-bcast-f32"
        if self._perm_stream:  # in-register tables; fixed point: int64 only in slices that could overflow
            return "perm64-vpermw-i32" if self.fixed else "perm32-vpermps-f32"
        if not self.fixed:
            return f"{kind}-f32"
        if self.B == 1 and all(st.narrow is not None for st in self.states):
            return f"{kind}-i32"  # int32 lanes, int64 only in the slices that could overflow
        if self.pairs:
            return "csr-pairs-x-batch-i16"  # int16 pairs into int32 lanes, int64 only between chunks of long rows
        return f"{kind}-i64"

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
                    record: Callable[[int, _State], None] | None = None) -> np.ndarray:
        """One step of the layer stack on engine-typed input (B, D) -> last layer y (B, Pp) view."""
        x = np.asarray(x)
        if x.shape != (self.B, self.engine.input_dim):
            raise EngineError(f"frames have shape {tuple(x.shape)}; this recognizer takes "
                              f"({self.B}, {self.engine.input_dim}): one frame per stream")
        if self._perm_stream and record is None:
            return self._stream_perm(x)
        if self.fixed:
            x = self._check_int(x)
        with numba_threads(self.threads):
            return self._step_layers(x, record)

    def _stream_perm(self, x: np.ndarray) -> np.ndarray:
        """:meth:`step_layers` of one stream on the perm kernels with the least Python per step
        (at ~30 µs a step, the general path's checks and dispatch were a fifth of it): the
        fixed-point input checked and staged into ``z`` in one jitted pass, the kernels'
        arguments built once per layer (:meth:`_run_perm`)."""
        layers, states = self.engine.layers, self.states
        with numba_threads(self.threads):
            h = x[0]
            for k in range(len(states)):
                L, st = layers[k], states[k]
                if k == 0 and self.fixed:  # _check_int and the copy into z in one pass
                    self._require_int(x)
                    if not KP.stage_input(h, st.z, *self._in_range):
                        raise self._out_of_range()
                else:
                    st.z[:L.input_dim] = h
                self._run_perm(L, st, st.perm.gx, st.z, st.y_off, st.no_xw, -1)
                h = st.y_out[:L.proj]
            return h[None]

    def _step_layers(self, x: np.ndarray, record: Callable[[int, _State], None] | None) -> np.ndarray:
        """:meth:`step_layers` on checked input, inside the caller's ``numba_threads`` block."""
        if self.B == 1:
            h = x[0]
            for k, (L, st) in enumerate(zip(self.engine.layers, self.states)):
                h = self._step_one(L, st, h)
                if record is not None:
                    record(k, st)
            return h[None]
        B = self.B
        self.x[:, :B] = x.T
        h = self.x
        for k, (L, st) in enumerate(zip(self.engine.layers, self.states)):
            h = self._step(L, st, h)
            if record is not None:
                record(k, st)
        return h.T[:B, :self.engine.layers[-1].proj]

    def run_frames(self, X: np.ndarray) -> np.ndarray:
        """Utterance mode over (T, B, D) engine-typed frames -> (B, T, P) last-layer outputs.

        One stream: per chunk of frames, each layer first computes W_x x_t of all its frames (one
        batched sparse product), then runs the recurrence step by step. Many streams: step by
        step with the streaming kernel, which is faster there (see below).
        """
        T, B, D = X.shape
        if B != self.B or D != self.engine.input_dim:
            raise EngineError(f"frames have shape {X.shape}; expected (T, {self.B}, {self.engine.input_dim})")
        if self.fixed:
            X = self._check_int(X)
        with numba_threads(self.threads):
            return self._run_frames(X)

    def _run_frames(self, X: np.ndarray) -> np.ndarray:
        """:meth:`run_frames` on checked input, inside the caller's ``numba_threads`` block."""
        T, B, _ = X.shape
        P = self.engine.layers[-1].proj
        out = np.zeros((B, T, P), dtype=self.in_dtype)
        if B > 1:
            # Many streams: the streaming kernel's W_x x_t inside its pass over each row beats
            # batching W_x over frames (measured on the paper model at B = 32: 240 vs 285 us/step
            # float, 370 vs 415-500 fixed), because the rows' recurrent work dominates there.
            if self.pairs:
                return self._run_frames_pairs(X, out)
            for t in range(T):
                out[:, t] = self._step_layers(X[t], None)
            return out
        chunk = CHUNK
        for t0 in range(0, T, chunk):
            h = np.ascontiguousarray(X[t0:t0 + chunk, 0], dtype=self.in_dtype)  # (Tc, D)
            Tc = h.shape[0]
            for L, st in zip(self.engine.layers, self.states):
                D, Pl = L.input_dim, L.proj
                xw = st.buffer("xw", (L.blocks * L.hp, Tc), st.acc.dtype)
                w = L.w_x
                self.K.input_products(L.blocks, st.groups, w.csr_ptr, w.csr_cols, w.csr_vals,
                                      np.ascontiguousarray(h.T), xw)
                xw_o = st.buffer("xw_o", (Tc, L.blocks * L.hidden), xw.dtype)  # frame-major
                KL.frame_major(xw, st.order, xw_o)
                ys = st.buffer("ys", (Tc, Pl), self.in_dtype)
                yo = st.y_off
                st.zr[:Pl] = st.z[yo:yo + Pl]
                for t in range(Tc):
                    ys[t] = self._run_one(L, st, L.gr, None if st.perm is not None else st.rsl, st.zr, 0, xw_o, t)
                st.z[yo:yo + Pl] = st.zr[:Pl]
                h = ys
            out[0, t0:t0 + Tc] = h[:, :P]
        return out

    def trace(self, x_q: np.ndarray) -> list[dict[str, np.ndarray]]:
        """Fixed point, one stream: per layer ``acc`` (T, blocks H), the cell's state and output
        signal (T, H; the LSTMP's c and m, the GRU's h), ``acc_y`` (T, P; a cell with an output
        matrix) and ``y`` of every step, named and ordered as the reference model's trace
        (compare with ``ReferenceModel.run``)."""
        if self.B != 1:
            raise EngineError("trace runs one stream")
        spec = self.engine.spec
        proj = spec.projection is not None
        names = ("acc", spec.state[0], spec.output, *(("acc_y",) if proj else ()), "y")
        recs = [{s: [] for s in names} for _ in self.engine.layers]

        def record(k: int, st: _State) -> None:
            L, r = self.engine.layers[k], recs[k]
            H, P = L.hidden, L.proj
            vals = {"acc": st.acc[:L.blocks * H], "y": st.y_out[:P], spec.state[0]: st.c[:H], spec.output: st.m[:H]}
            if proj:
                vals["acc_y"] = st.acc_y[:P]
            for name, arr in vals.items():  # the GRU's state is its output: h once
                r[name].append(arr.astype(np.int64))

        for x in np.asarray(x_q):
            self.step_layers(x[None], record)
        return [{s: np.array(v) for s, v in r.items()} for r in recs]

    # ---- internals ------------------------------------------------------------------------
    def _check_int(self, x: np.ndarray) -> np.ndarray:
        self._require_int(x)
        lo, hi = self._in_range
        if x.size and KF.out_of_range(x.reshape(-1), lo, hi):
            raise self._out_of_range()
        return x

    @staticmethod
    def _require_int(x: np.ndarray) -> None:
        if x.dtype.kind not in "iu":
            raise EngineError(f"fixed-point input must be integers (quantize first), not {x.dtype}")

    def _out_of_range(self) -> EngineError:
        lo, hi = self._in_range
        return EngineError(f"fixed-point input holds values outside [{lo}, {hi}]")

    def _step_one(self, L: LayerWeights, st: _State, x: np.ndarray) -> np.ndarray:
        """Streaming step of one stream: z = [x_t; y_{t-1}] through [W_x | W_r]."""
        D = L.input_dim
        if self.fixed and (st.cl is not None or st.perm is not None):
            st.z[:D] = x  # raw 16-bit inputs: the cluster and perm64 kernels align W_x x themselves
        elif self.fixed:
            st.z[:D] = x.astype(np.int64) << -int(L.shifts[cells.SX])  # fits int32 when narrow
        else:
            st.z[:D] = x
        return self._run_one(L, st, L.gx, None if st.perm is not None else st.gsl, st.z, st.y_off, st.no_xw, -1)

    def _run_one(self, L: LayerWeights, st: _State, g, slices, z, yo: int, xw, col: int) -> np.ndarray:
        p = L.gp
        cell = (L.kind, L.blocks)
        if st.cl is not None:
            self._run_cluster(L, st, "gx" if g is L.gx else "gr", z, yo, xw, col)
        elif st.perm is not None:
            self._run_perm(L, st, st.perm.gx if g is L.gx else st.perm.gr, z, yo, xw, col)
        elif st.narrow is not None:
            KI.step_one(*cell, g.ptr, g.cols, g.vals, g.rows, slices, st.narrow.of(g, L), z, st.acc, L.bias_o,
                        L.vec_o, L.has_vec, xw, max(col, 0), col >= 0, st.c, st.m, st.cells, p.ptr,
                        p.cols, p.vals, p.rows, st.psl, st.narrow.gp, st.y_out, yo, st.s32, st.scratch,
                        st.acc_y, L.shifts, *self._luts)
        else:
            args = (*cell, g.ptr, g.cols, g.vals, g.rows, slices, z, st.acc, L.bias_o, L.vec_o, L.has_vec,
                    xw, max(col, 0), col >= 0, st.c, st.m, st.cells, p.ptr, p.cols, p.vals, p.rows,
                    st.psl, st.y_out, yo, st.scratch)
            if self.fixed:
                self.K.step_one(*args, st.acc_y, L.shifts, *self._luts)
            else:
                self.K.step_one(*args)
        return st.y_out[:L.proj]

    def _run_cluster(self, L: LayerWeights, st: _State, which: str, z, yo: int, xw, col: int) -> None:
        g, p = st.cl[which], st.cl["gp"]
        gcl = st.gcl if which == "gx" else st.rcl
        if self.fixed:
            KI.step_cluster(L.kind, L.blocks, g.G, g.ptr, g.nx, g.chunk, g.cols, g.vals, gcl, z, st.acc, L.bias_o,
                            L.vec_o, L.has_vec, xw, max(col, 0), col >= 0, st.c, st.m, st.cells, p.ptr, p.nx,
                            p.chunk, p.cols, p.vals, st.pcl, st.y_out, yo, st.s32, st.s64, st.acc_y,
                            L.shifts, *self._luts)
        else:
            KC.step_cluster(L.kind, L.blocks, g.G, g.ptr, g.cols, g.vals, gcl, z, st.acc, L.bias_o, L.vec_o,
                            L.has_vec, xw, max(col, 0), col >= 0, st.c, st.m, st.cells, p.ptr, p.cols, p.vals,
                            st.pcl, st.y_out, yo, st.scratch)

    def _run_perm(self, L: LayerWeights, st: _State, g, z, yo: int, xw, col: int) -> None:
        if col < 0 and g is st.perm.gx:  # streaming: every argument is fixed; built once (Python's share of a step)
            if st.stream_args is None:
                st.stream_args = self._perm_args(L, st, g, z, yo, xw, col)
            args = st.stream_args
        else:
            args = self._perm_args(L, st, g, z, yo, xw, col)
        (KP.step_perm if self.fixed else KP.step_perm_float)(*args)

    def _perm_args(self, L: LayerWeights, st: _State, g, z, yo: int, xw, col: int) -> tuple:
        p = st.perm.gp
        if not self.fixed:
            return (L.kind, L.blocks, g.ptr, g.mid, g.counts, g.idx, g.vals, g.rows, g.slices, g.split_blocks, z,
                    st.acc, L.bias_o, L.vec_o, L.has_vec, xw, max(col, 0), col >= 0, st.c, st.m,
                    st.perm.cell_bounds, p.ptr, p.mid, p.counts, p.idx, p.vals, p.rows, p.slices, st.y_out, yo,
                    st.a32)
        return (L.kind, L.blocks, g.ptr, g.mid, g.counts, g.idx, g.vals, g.rows, g.wide, g.slices,
                g.split_blocks, z, st.acc, L.bias_o, L.vec_o, L.has_vec, xw, max(col, 0), col >= 0, st.c,
                st.m, st.perm.cell_bounds, p.ptr, p.mid, p.counts, p.idx, p.vals, p.rows, p.wide, p.slices,
                st.y_out, yo, st.a32, st.a64, st.acc_y, L.shifts, *self._luts)

    def _step(self, L: LayerWeights, st: _State, x: np.ndarray) -> np.ndarray:
        if st.pairs is not None:
            return self._step_pairs(L, st, x)
        mats = [getattr(m, f"csr_{a}") for m in (L.w_x, L.w_r) for a in ("ptr", "cols", "vals")]
        proj = [getattr(L.w_y, f"csr_{a}") for a in ("ptr", "cols", "vals")]
        y_in, y_out = st.y[st.cur], st.y[1 - st.cur]
        args = (L.kind, L.blocks, st.groups, st.pgroups, x, y_in, *mats, L.bias,
                L.vec if self.fixed else st.group_vec, L.has_vec, st.c, st.m, st.acc, st.scratch, *proj, y_out)
        if self.fixed:
            self.K.step_many(*args, st.acc_y, L.shifts, *self._luts)
        else:
            self.K.step_many(*args)
        st.cur = 1 - st.cur
        return y_out

    def _run_frames_pairs(self, X: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Utterance mode of many streams on the pair kernel: every frame's int16 input staged
        by one jitted pass, each step's output stored straight into ``out`` (B, T, P) by another
        (numpy's transposing copies cost ~20 µs of a ~300 µs step at 32 streams)."""
        T, B, D = X.shape
        xs = aligned_zeros((T, D, KPR.padded_streams(B)), np.int16)  # every frame's rows 64-byte aligned
        KPR.stage_frames(X, xs)
        layers, states = self.engine.layers, self.states
        for t in range(T):
            h = xs[t]
            for k in range(len(states)):
                h = self._step_pairs(layers[k], states[k], h)
            KPR.store_frame(h, out, t)
        return out

    def _step_pairs(self, L: LayerWeights, st: _State, x: np.ndarray) -> np.ndarray:
        """:meth:`_step` on the int16 pair kernel (``x`` and the result: (rows, Bp) int16). The
        arguments that do not change between steps are gathered once per layer."""
        if st.pair_args is None:
            pr = st.pairs
            st.pair_args = ((L.kind, L.blocks, st.groups, st.pgroups),
                            (*pr.args("gx"), *pr.args("gr"), L.bias, st.group_vec, L.has_vec, st.c, st.m, st.acc,
                             st.scratch, st.s64, *pr.args("gp")),
                            (st.acc_y, L.shifts, *self._luts, st.taken), (st.y[0], st.y[1]))
        head, mid, tail, ys = st.pair_args
        y_out = ys[1 - st.cur]
        KPR.step_pairs(*head, x, ys[st.cur], *mid, y_out, *tail)
        st.cur = 1 - st.cur
        return y_out
