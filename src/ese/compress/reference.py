"""The integer reference model: the golden executor of a fixed-point model (docs/fixed-point.md).

Every other executor (the compiler's image decoded, the functional and cycle accelerator models,
the Amaranth RTL, the CPU engine's integer path) must reproduce :meth:`ReferenceModel.run`
**exactly**, vector by vector and step by step. Inside the step there are only numpy int64 arrays:
exact integer products and sums, :func:`~ese.compress.fixedpoint.align` (round half up by
"add half, arithmetic shift right"), :func:`~ese.compress.fixedpoint.saturate` (counted) and LUT
lookups by integer index. Floats appear only on the host side: quantizing input features
(:meth:`ReferenceModel.quantize_input`) and turning integer logits into log-probabilities.

One step of layer l, in this order (formats F* are binary points from ``QLayer.formats``)::

    sum   = align(W_x x, Fwx+Fx -> Fsum) + align(W_r y_prev, Fwr+Fy -> Fsum) + align(bias, Fb -> Fsum)
            with Fsum = max(Fwx+Fx, Fwr+Fy, Fb): left shifts only, so the sum is exact  (4H)
    acc   = sat_acc( align(sum, Fsum -> Facc) )          Facc <= Fsum     (4H)  PE output
    z_k   = sat_A( align(acc_k, Facc -> Fz_k) + align(p_k * c_prev, Fp+Fc -> Fz_k) )   k = i, f
    z_g   = sat_A( align(acc_g, Facc -> Fz_g) )
    i, f  = LUT_sigmoid(z_i), LUT_sigmoid(z_f);  g = LUT_tanh(z_g)         (format Fg = A-2)
    c     = sat_A( align( align(f*c_prev, Fg+Fc -> Fs) + align(i*g, 2Fg -> Fs), Fs -> Fc) )
            with Fs = max(Fg+Fc, 2Fg): the two products are aligned exactly, rounded once
    z_o   = sat_A( align(acc_o, Facc -> Fz_o) + align(p_o * c, Fp+Fc -> Fz_o) )  (the new c)
    o     = LUT_sigmoid(z_o);  tanh_c = LUT_tanh(c)                            (input Fc)
    m     = sat_A( align(o * tanh_c, 2Fg -> Fm) )                               Fm = A-2
    acc_y = sat_acc( align(W_ym m, Fwy+Fm -> Facc_y) )                  Facc_y <= Fwy+Fm
    y     = sat_A( align(acc_y, Facc_y -> Fy) )

The output layer runs on the host in exact int64: ``logits = W_out y + b_out`` at binary point
Fwo + Fy (no rounding, no saturation); the predicted class is the first index of the maximum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sparse

from ese.compress.fixedpoint import QuantError, SaturationCounter, align, quantize, saturate
from ese.compress.lut import lut_index
from ese.compress.qmodel import QLayer, QModel, sum_frac, validate_qmodel

TRACE_SIGNALS = ("x", "acc", "z_i", "z_f", "z_g", "z_o", "i", "f", "g", "o", "c", "tanh_c", "m",
                 "acc_y", "y")
_SPARSE_BELOW = 0.5  # matrices sparser than this multiply as int64 CSR (exact, faster)


class _IntMatrix:
    """``a @ W.T`` for int64 row batches ``a`` (B, K) -> (B, N), dense or CSR; always exact."""

    def __init__(self, w: np.ndarray) -> None:
        self.shape = w.shape
        density = np.count_nonzero(w) / max(w.size, 1)
        self.csr = sparse.csr_matrix(w.astype(np.int64)) if density < _SPARSE_BELOW else None
        self.w = None if self.csr is not None else np.ascontiguousarray(w, dtype=np.int64)

    def rmul(self, a: np.ndarray) -> np.ndarray:
        if self.csr is not None:
            return np.asarray(self.csr @ a.T, dtype=np.int64).T  # (B, N)
        return (self.w @ a.T).T  # row-major dot products: ~5x faster than a @ W.T for int64


@dataclass
class Trace:
    """Every intermediate vector of every step of one utterance, and the event counters.

    ``layers[k][signal]`` is an int64 array (T, n) for each name in ``TRACE_SIGNALS`` (``acc`` is
    (T, 4H) in gate order i, f, g, o; ``x`` is the layer's integer input). ``logits`` (T, C) int64
    at the output binary point. ``saturation`` counts clipped elements per "layer{k}.signal";
    ``lut_clipped`` counts LUT inputs outside the table range per "layer{k}.{i,f,g,o,tanh_c}".
    """

    layers: list[dict[str, np.ndarray]]
    logits: np.ndarray
    saturation: SaturationCounter = field(default_factory=SaturationCounter)
    lut_clipped: SaturationCounter = field(default_factory=SaturationCounter)

    @property
    def y(self) -> np.ndarray:
        """The accelerator's output: y of the last layer (T, P)."""
        return self.layers[-1]["y"]


class _Layer:
    """A QLayer prepared for execution: matrices for fast exact products, shifts resolved."""

    def __init__(self, layer: QLayer, qm: QModel) -> None:
        f = layer.formats
        self.H = layer.w_ym.shape[1]
        self.A, self.acc_bits = qm.quant.act_bits, qm.quant.acc_bits
        self.f = {k: v.frac for k, v in f.items()}
        self.w_x, self.w_r, self.w_ym = _IntMatrix(layer.w_x), _IntMatrix(layer.w_r), _IntMatrix(layer.w_ym)
        self.f_sum = sum_frac(self.f)
        self.bias_sum = align(layer.bias, f["bias"].frac, self.f_sum)  # static: an exact left shift
        self.peephole = layer.peephole  # (3, H) or None
        self.luts, self.specs = qm.luts, qm.lut_specs


class ReferenceModel:
    """Executes a :class:`QModel` exactly; see the module docstring for the order of operations."""

    def __init__(self, qmodel: QModel) -> None:
        validate_qmodel(qmodel, where="the reference model's input")
        self.qm = qmodel
        q = qmodel.quant
        widest_k = max(qmodel.model.input_dim, qmodel.model.proj, qmodel.model.hidden) + 1
        # products and sums stay exact in int64 only below 2**63: refuse configurations that could not
        worst = q.weight_bits + q.act_bits + math.ceil(math.log2(widest_k)) + _max_left_shift(qmodel)
        if worst > 62:
            raise QuantError(f"weight_bits={q.weight_bits} and act_bits={q.act_bits} with these binary points "
                             f"need {worst}-bit exact sums; the reference model supports at most 62")
        self.layers = [_Layer(layer, qmodel) for layer in qmodel.layers]
        self.w_out = _IntMatrix(qmodel.w_out)

    # ---- host side -------------------------------------------------------------------------
    def quantize_input(self, feats: np.ndarray, counter: SaturationCounter | None = None) -> np.ndarray:
        """Float features (T, D) -> int64 in the input format (host side; saturation counted as layer0.x)."""
        return quantize(feats, self.qm.input_format, counter, "layer0.x")

    # ---- the golden model ------------------------------------------------------------------
    def run(self, x_q: np.ndarray) -> Trace:
        """Run one utterance of integer features (T, D); returns every intermediate vector."""
        x_q = self._check_input(x_q)
        sat, clip = SaturationCounter(), SaturationCounter()
        traces: list[dict[str, np.ndarray]] = []
        h = x_q[None]  # (1, T, D)
        lengths = np.array([x_q.shape[0]])
        for k, layer in enumerate(self.layers):
            rec: dict[str, list[np.ndarray]] = {s: [] for s in TRACE_SIGNALS}
            h = _run_layer(layer, h, lengths, sat, clip, f"layer{k}", rec)
            traces.append({s: (np.concatenate(v, axis=0) if v else np.zeros((0, 0), np.int64))
                           for s, v in rec.items()})
        logits = self._logits(h)[0]
        return Trace(traces, logits, sat, clip)

    def run_batch(self, xs: list[np.ndarray]) -> tuple[list[np.ndarray], SaturationCounter, SaturationCounter]:
        """Integer logits (T_b, C) of several utterances at once, plus the event counters.

        Shorter utterances are zero-padded at the end; the model is causal, so their frames are
        unaffected, and padded frames are excluded from the counters. Equal to :meth:`run` per
        utterance, exactly.
        """
        xs = [self._check_input(x) for x in xs]
        lengths = np.array([len(x) for x in xs])
        h = np.zeros((len(xs), int(lengths.max(initial=0)), self.qm.model.input_dim), dtype=np.int64)
        for b, x in enumerate(xs):
            h[b, :len(x)] = x
        sat, clip = SaturationCounter(), SaturationCounter()
        for k, layer in enumerate(self.layers):
            h = _run_layer(layer, h, lengths, sat, clip, f"layer{k}", None)
        logits = self._logits(h)
        return [logits[b, :n] for b, n in enumerate(lengths)], sat, clip

    def _logits(self, y: np.ndarray) -> np.ndarray:
        B, T, P = y.shape
        flat = self.w_out.rmul(y.reshape(B * T, P)) + self.qm.b_out  # exact int64, frac Fwo + Fy
        return flat.reshape(B, T, -1)

    def _check_input(self, x_q: np.ndarray) -> np.ndarray:
        x_q = np.asarray(x_q)
        D = self.qm.model.input_dim
        if x_q.ndim != 2 or x_q.shape[1] != D:
            raise QuantError(f"reference model input must be (frames, {D}) integers, not shape {x_q.shape}")
        if x_q.dtype.kind not in "iu":
            raise QuantError(f"reference model input must be integers (use quantize_input), not {x_q.dtype}")
        fmt = self.qm.input_format
        if x_q.size and (x_q.min() < fmt.lo or x_q.max() > fmt.hi):
            raise QuantError(f"reference model input holds values outside the {fmt.bits}-bit input format")
        return x_q.astype(np.int64)


def _max_left_shift(qm: QModel) -> int:
    worst = 0
    for layer in qm.layers:
        f = {k: v.frac for k, v in layer.formats.items()}
        f_sum = sum_frac(f)
        worst = max(worst, f_sum - f["w_x"] - f["x"], f_sum - f["w_r"] - f["y"], f_sum - f["bias"],
                    f["z_i"] - f["peephole"] - f["c"], f["z_o"] - f["peephole"] - f["c"],
                    f["z_f"] - f["peephole"] - f["c"], f["gate"] - f["c"], f["z_i"] - f["acc"],
                    f["z_f"] - f["acc"], f["z_g"] - f["acc"], f["z_o"] - f["acc"], f["y"] - f["acc_y"],
                    f["acc_y"] - f["w_ym"] - f["m"])
    return max(worst, 0)


def _run_layer(L: _Layer, x: np.ndarray, lengths: np.ndarray, sat: SaturationCounter,
               clip: SaturationCounter, tag: str, rec: dict[str, list[np.ndarray]] | None) -> np.ndarray:
    """One layer over a padded batch x (B, T, D) int64 -> y (B, T, P) int64."""
    B, T, D = x.shape
    H, A, f = L.H, L.A, L.f
    P = L.w_ym.shape[0]
    xw = L.w_x.rmul(x.reshape(B * T, D)).reshape(B, T, 4 * H)  # W_x x_t for every t: exact, frac Fwx+Fx
    y = np.zeros((B, P), dtype=np.int64)
    c = np.zeros((B, H), dtype=np.int64)
    ys = np.zeros((B, T, P), dtype=np.int64)
    for t in range(T):
        rows = t < lengths  # (B,) real frames of this step
        ar = L.w_r.rmul(y)  # W_r y_{t-1}: (B, 4H), frac Fwr+Fy
        exact = align(xw[:, t], f["w_x"] + f["x"], L.f_sum) + align(ar, f["w_r"] + f["y"], L.f_sum) + L.bias_sum
        acc = saturate(align(exact, L.f_sum, f["acc"]), L.acc_bits, sat, f"{tag}.acc", rows)  # PE output (B, 4H)
        ew = elementwise(acc, c, L.peephole, f, A, L.luts, L.specs, sat, clip, tag, rows)
        c, m = ew["c"], ew["m"]  # (B, H)

        acc_y = saturate(align(L.w_ym.rmul(m), f["w_ym"] + f["m"], f["acc_y"]), L.acc_bits, sat,
                         f"{tag}.acc_y", rows)  # (B, P)
        y = saturate(align(acc_y, f["acc_y"], f["y"]), A, sat, f"{tag}.y", rows)
        ys[:, t] = y
        if rec is not None:
            for name, v in (("x", x[:, t]), ("acc", acc), *ew.items(), ("acc_y", acc_y), ("y", y)):
                rec[name].append(v.copy())
    return ys


def elementwise(acc: np.ndarray, c_prev: np.ndarray, peephole: np.ndarray | None, f: dict[str, int], A: int,
                luts: dict[str, np.ndarray], specs: dict, sat: SaturationCounter, clip: SaturationCounter,
                tag: str, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The element-wise stage of one step (module docstring, from ``acc`` to ``m``).

    ``acc`` (..., 4H) saturated gate accumulators in gate order i, f, g, o, ``c_prev`` (..., H),
    ``f`` the layer's binary points. Returns z_i, z_f, z_g, z_o, i, f, g, o, c, tanh_c, m (each
    (..., H), in TRACE_SIGNALS order); saturations and LUT clips are counted under ``tag``, only on
    the leading-axis ``rows`` when given (real frames of a padded batch). Every executor of the
    spec in numpy (this model, the functional accelerator model) runs this one function.
    """
    H = c_prev.shape[-1]
    Fg = f["gate"]
    a_i, a_f, a_g, a_o = (acc[..., k * H:(k + 1) * H] for k in range(4))

    def lut(name: str, z: np.ndarray, frac: int, signal: str) -> np.ndarray:
        k, outside = lut_index(z, frac, specs[name])
        clip.record(f"{tag}.{signal}", int(np.count_nonzero(outside if rows is None else outside[rows])))
        return luts[name][k]

    z_i = align(a_i, f["acc"], f["z_i"])
    z_f = align(a_f, f["acc"], f["z_f"])
    if peephole is not None:
        z_i = z_i + align(peephole[0] * c_prev, f["peephole"] + f["c"], f["z_i"])  # w_ic * c_{t-1}
        z_f = z_f + align(peephole[1] * c_prev, f["peephole"] + f["c"], f["z_f"])  # w_fc * c_{t-1}
    z_i = saturate(z_i, A, sat, f"{tag}.z_i", rows)
    z_f = saturate(z_f, A, sat, f"{tag}.z_f", rows)
    z_g = saturate(align(a_g, f["acc"], f["z_g"]), A, sat, f"{tag}.z_g", rows)
    i = lut("sigmoid", z_i, f["z_i"], "i")
    fg = lut("sigmoid", z_f, f["z_f"], "f")
    g = lut("tanh", z_g, f["z_g"], "g")

    fs = max(Fg + f["c"], 2 * Fg)  # exact common binary point of the two products
    c_sum = align(fg * c_prev, Fg + f["c"], fs) + align(i * g, 2 * Fg, fs)
    c = saturate(align(c_sum, fs, f["c"]), A, sat, f"{tag}.c", rows)  # c_t

    z_o = align(a_o, f["acc"], f["z_o"])
    if peephole is not None:
        z_o = z_o + align(peephole[2] * c, f["peephole"] + f["c"], f["z_o"])  # w_oc * c_t
    z_o = saturate(z_o, A, sat, f"{tag}.z_o", rows)
    o = lut("sigmoid", z_o, f["z_o"], "o")
    tanh_c = lut("tanh", c, f["c"], "tanh_c")
    m = saturate(align(o * tanh_c, 2 * Fg, f["m"]), A, sat, f"{tag}.m", rows)
    return {"z_i": z_i, "z_f": z_f, "z_g": z_g, "z_o": z_o, "i": i, "f": fg, "g": g, "o": o, "c": c,
            "tanh_c": tanh_c, "m": m}


def exact_sum_bits(qm: QModel) -> list[dict[str, int]]:
    """Per layer, the signed width that holds the exact (pre-rounding) SpMV sums for any input.

    ``gates``: max over rows of sum_j |w_x| 2**sx + sum_j |w_r| 2**sr (times the largest input
    magnitude 2**(A-1)) + |bias| 2**sb; ``proj``: the same for W_ym m. An implementation whose
    accumulator register has at least this many bits computes the sums exactly in any order
    before the one rounding shift and saturation the spec defines.
    """
    out = []
    big = 1 << (qm.quant.act_bits - 1)
    for layer in qm.layers:
        f = {k: v.frac for k, v in layer.formats.items()}
        f_sum = sum_frac(f)
        row = (np.abs(layer.w_x).sum(axis=1) * big << (f_sum - f["w_x"] - f["x"])) \
            + (np.abs(layer.w_r).sum(axis=1) * big << (f_sum - f["w_r"] - f["y"])) \
            + (np.abs(layer.bias) << (f_sum - f["bias"]))
        proj = np.abs(layer.w_ym).sum(axis=1) * big
        out.append({"gates": int(row.max()).bit_length() + 1, "proj": int(proj.max()).bit_length() + 1})
    return out
