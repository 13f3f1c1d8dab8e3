"""The CPU engine: a compressed recurrent stack of any cell :mod:`ese.runtime.cells` has kernels for,
packed for numba kernels, float or fixed point.

>>> eng = Engine.from_qmodel(load_qmodel("model.qnpz"))          # fixed point, bit-exact
>>> eng = Engine.from_checkpoint("pruned.pt")                     # float
>>> rec = eng.recognizer(streams=4); logp = rec.push(frames)       # (4, D) -> (4, C) per step
>>> logp = eng.posteriors(feats)                                  # one utterance (T, D) -> (T, C)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np

from ese.cell import CellSpec, cell_spec
from ese.compress.fixedpoint import dequantize, log_softmax, quantize
from ese.compress.qmodel import QModel
from ese.runtime import cells
from ese.runtime import kernels_fixed as KF
from ese.runtime import kernels_float as KL
from ese.runtime.errors import EngineError
from ese.runtime.layout import LANES, thread_groups
from ese.runtime.cluster_layout import fixed_clusters, float_clusters
from ese.runtime.kernels_int16 import out_bound
from ese.runtime.kernels_pairs import PairLayer, pair_layer
from ese.runtime.kernels_perm import PermLayer, perm_layer, perm_layer_float
from ese.runtime.perm_layout import perm_supported
from ese.runtime.patterns import cluster_size
from ese.runtime.patterns import detect as detect_pattern
from ese.runtime.recognizer import Recognizer
from ese.runtime.weights import LayerWeights, engine_matrices, fixed_arrays, fixed_layer, float_layer
from ese.threads import auto_threads

log = logging.getLogger(__name__)

MODES = ("float", "fixed")


@dataclass(eq=False)
class Engine:
    """A packed model. ``mode`` "float" (fp32) or "fixed" (integer, docs/fixed-point.md)."""

    mode: str
    layers: list[LayerWeights]
    w_out: np.ndarray  # (C, P) float32 or int64
    b_out: np.ndarray  # (C,)
    output_delay: int = 0
    qmodel: QModel | None = None  # fixed point: formats, LUTs, input quantization
    threads: int = 0  # 0 = chosen per recognizer from the machine's load (n_threads)
    pattern: str = "unstructured"  # sparsity pattern of the matrices (ese.runtime.patterns)
    clusters: list | None = None  # cluster:G pattern: per layer {gx, gr, gp} ClusterMatrix
    cell: str = "lstmp"  # the recurrent cell (ese.cell)
    _perm: dict = field(default_factory=dict, repr=False)  # thread count -> perm64 plans (or None)
    _pairs: dict = field(default_factory=dict, repr=False)  # "plans" -> many-stream pair plans (or None)

    # ---- construction ---------------------------------------------------------------------
    @classmethod
    def from_float(cls, layers: Sequence[dict[str, np.ndarray]], w_out: np.ndarray, b_out: np.ndarray,
                   output_delay: int = 0, threads: int = 0, cell: str | CellSpec = "lstmp") -> Engine:
        """From float arrays per layer, by the cell description's names (``CellSpec.array_names``;
        an optional vector the layer lacks is absent or None)."""
        spec = _engine_cell(cell)
        packed = [float_layer(spec, L) for L in layers]
        _check_stack(packed)
        pattern = detect_pattern(L[k] for L in layers for k in spec.matrix_names)
        G = cluster_size(pattern)
        clusters = [float_clusters(*engine_matrices(spec, L, P.hidden, np.float32), G) for L, P in zip(layers, packed)] \
            if G and CLUSTER_KERNELS and _fits(G, packed) else None
        return cls("float", packed, np.ascontiguousarray(w_out, np.float32),
                   np.ascontiguousarray(b_out, np.float32), output_delay, None, threads, pattern, clusters, spec.name)

    @classmethod
    def from_model(cls, model, output_delay: int = 0, threads: int = 0) -> Engine:
        """From an :class:`ese.model.lstmp.AcousticModel` of any cell (pruned or not)."""
        layers = [{k: v.detach().cpu().numpy() for k, v in L.named_parameters()} for L in model.layers]
        return cls.from_float(layers, model.output.weight.detach().cpu().numpy(),
                              model.output.bias.detach().cpu().numpy(), output_delay, threads, model.cfg.cell)

    @classmethod
    def from_checkpoint(cls, path: str | Path, threads: int = 0) -> Engine:
        """From a (pruned) float checkpoint; the output delay comes from its training config."""
        from ese.model.checkpoint import checkpoint_config, load_checkpoint
        model, meta = load_checkpoint(path)
        return cls.from_model(model, checkpoint_config(meta).train.output_delay, threads)

    @classmethod
    def from_qmodel(cls, qm: QModel, mode: str = "fixed", threads: int = 0) -> Engine:
        """From a fixed-point model: ``fixed`` runs it exactly, ``float`` its dequantized weights."""
        _check_mode(mode)
        spec = _engine_cell(qm.cell)
        if mode == "float":
            layers, w_out, b_out = qm.dequantized()
            return cls.from_float(float32_layers(layers), w_out.astype(np.float32), b_out.astype(np.float32),
                                  qm.output_delay, threads, spec)
        packed = [fixed_layer(L, qm) for L in qm.layers]
        _check_stack(packed)
        pattern = detect_pattern(getattr(L, k) for L in qm.layers for k in spec.matrix_names)
        G = cluster_size(pattern)
        clusters = None
        if G and CLUSTER_KERNELS and _fits(G, packed) and all(
                -int(L.shifts[cells.SX]) >= 0 and -int(L.shifts[cells.SR]) >= 0 for L in packed):
            A = qm.quant.act_bits
            clusters = [fixed_clusters(*fixed_arrays(ql, qm), G,
                                       1 << ((qm.input_format.bits if k == 0 else A) - 1), 1 << (A - 1),
                                       out_bound(qm, L.shifts))
                        for k, (ql, L) in enumerate(zip(qm.layers, packed))]
        return cls("fixed", packed, np.ascontiguousarray(qm.w_out, np.int64),
                   np.ascontiguousarray(qm.b_out, np.int64), qm.output_delay, qm, threads, pattern, clusters,
                   spec.name)

    @classmethod
    def from_program(cls, program, mode: str = "fixed", threads: int = 0) -> Engine:
        """From a compiled program image (:class:`ese.compiler.program.Program`)."""
        return cls.from_qmodel(program.to_qmodel(), mode, threads)

    @classmethod
    def load(cls, path: str | Path, mode: str | None = None, threads: int = 0) -> Engine:
        """By content (:func:`ese.filekind.model_kind`): a ``.qnpz`` (fixed by default), a program
        image, else a checkpoint."""
        from ese.filekind import model_kind_or_suffix
        path = Path(path)
        kind = model_kind_or_suffix(path)
        if kind == "qmodel":
            from ese.compress.qmodel import load_qmodel
            return cls.from_qmodel(load_qmodel(path), mode or "fixed", threads)
        if kind == "image":
            from ese.compiler.image import load_program
            return cls.from_program(load_program(path), mode or "fixed", threads)
        if mode not in (None, "float"):
            raise EngineError(f"{path} is a float checkpoint; it runs in float mode only")
        return cls.from_checkpoint(path, threads)

    # ---- properties -----------------------------------------------------------------------
    @property
    def spec(self) -> CellSpec:
        """The cell description of the model's layers."""
        return cell_spec(self.cell)

    @property
    def input_dim(self) -> int:
        return self.layers[0].input_dim

    @property
    def num_classes(self) -> int:
        return int(self.w_out.shape[0])

    def weight_bytes(self, batch: int = 1) -> int:
        """Resident bytes of the weights the kernels for ``batch`` streams read (+ output layer)."""
        return int(sum(L.nbytes(batch) for L in self.layers) + self.w_out.nbytes + self.b_out.nbytes)

    def n_threads(self) -> int:
        """``threads`` when set; else chosen from the machine's present load (the cores other
        processes leave free, at most numba's count: ``ese.threads.auto_threads``)."""
        if self.threads:
            return self.threads
        choice = auto_threads(numba.get_num_threads())
        log.debug("CPU engine threads: %d (%s)", choice.count, choice.reason)
        return choice.count

    def perm_layers(self, threads: int) -> list[PermLayer] | None:
        """The permuted-table plan of every layer at ``threads`` (built once; fixed point
        ``perm64``, float ``perm32``), or None where those kernels do not run: a cluster pattern
        (its own kernels), a CPU without AVX-512BW, ``PERM_KERNELS`` off, or a fixed-point layer
        whose formats do not fit."""
        if self.clusters or not PERM_KERNELS or not perm_supported():
            return None
        if threads not in self._perm:
            if self.mode == "float":
                plans = [perm_layer_float(L, threads) for L in self.layers]
            else:
                plans = [perm_layer(L, ql, self.qmodel, k == 0, threads)
                         for k, (L, ql) in enumerate(zip(self.layers, self.qmodel.layers))]
            self._perm[threads] = None if any(p is None for p in plans) else plans
        return self._perm[threads]

    def pair_layers(self) -> list[PairLayer] | None:
        """The many-stream pair plan of every layer (built once), or None where the int64 kernel
        runs instead: float mode, ``PAIR_KERNELS`` off, or a layer whose inputs or weights do not
        fit 16 bits (:func:`ese.runtime.kernels_pairs.pair_layer`)."""
        if self.mode != "fixed" or not PAIR_KERNELS:
            return None
        if "plans" not in self._pairs:
            plans = [pair_layer(L, self.qmodel, k == 0) for k, L in enumerate(self.layers)]
            self._pairs["plans"] = None if any(p is None for p in plans) else plans
        return self._pairs["plans"]

    # ---- running --------------------------------------------------------------------------
    def recognizer(self, streams: int = 1) -> Recognizer:
        return Recognizer(self, streams)

    def quantize_input(self, feats: np.ndarray) -> np.ndarray:
        """Float features -> the layer-0 input format (fixed) or float32 (float)."""
        feats = self.check_features(feats)
        if self.mode == "float":
            return feats.astype(np.float32)
        return quantize(feats, self.qmodel.input_format).astype(np.int32)

    def check_features(self, feats: np.ndarray, what: str = "features") -> np.ndarray:
        """``feats`` (..., D) as an array, else EngineError (shape, NaN/inf)."""
        arr = np.asarray(feats)
        if arr.ndim < 1 or arr.shape[-1] != self.input_dim:
            raise EngineError(f"{what} have shape {tuple(arr.shape)}; the model expects "
                              f"{self.input_dim} features per frame")
        if arr.dtype.kind not in "fiu":
            raise EngineError(f"{what} must be numbers, not {arr.dtype}")
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise EngineError(f"{what} contain NaN or inf")
        return arr

    def log_probs(self, y: np.ndarray) -> np.ndarray:
        """Output layer and log-softmax: last-layer ``y`` (..., P) -> (..., C) float32."""
        P = self.w_out.shape[1]
        if self.mode == "float":
            z = y[..., :P] @ self.w_out.T + self.b_out
        else:
            logits = y[..., :P].astype(np.int64) @ self.w_out.T + self.b_out  # exact
            z = dequantize(logits, self.qmodel.output_formats["logits"].frac)
        return log_softmax(z)  # float32, in z's precision

    def logits_fixed(self, y: np.ndarray) -> np.ndarray:
        """Exact integer logits of last-layer ``y`` (fixed mode)."""
        P = self.w_out.shape[1]
        return y[..., :P].astype(np.int64) @ self.w_out.T + self.b_out

    def posteriors(self, feats: np.ndarray, *, delay: bool = True) -> np.ndarray:
        """Log-probabilities (T, C) of one utterance; with ``delay`` aligned to the input frames
        as :func:`ese.model.decode.posteriors` does (pad ``output_delay`` last frames, drop first)."""
        return self.posteriors_batch([feats], delay=delay)[0]

    def posteriors_batch(self, utts: Sequence[np.ndarray], *, delay: bool = True) -> list[np.ndarray]:
        """Utterance API over several utterances at once (streams of a batch; causal padding)."""
        from ese.model.decode import pad_for_delay
        xs = [self.quantize_input(u) for u in utts]
        d = self.output_delay if delay else 0
        xs = [pad_for_delay(x, d) for x in xs]
        ys = self.run_layers(xs)
        return [self.log_probs(y)[d:] for y in ys]

    def run_layers(self, xs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Utterance mode: last-layer outputs (T_b, P) of input sequences (T_b, D) (already
        in the engine's input type): one utterance batches W_x x_t over chunks of frames, then runs the
        recurrence; several run as streams of one batch (``Recognizer.run_frames``)."""
        for k, x in enumerate(xs):
            if x.ndim != 2 or x.shape[1] != self.input_dim:
                raise EngineError(f"utterance {k} has shape {tuple(x.shape)}, expected (frames, {self.input_dim})")
        if not xs:
            return []
        rec = Recognizer(self, len(xs))
        T = max(len(x) for x in xs)
        return [y[:len(x)] for y, x in zip(rec.run_frames(_stack(xs, T, rec.in_dtype)), xs)]


CLUSTER_KERNELS = True  # run cluster:G models on the gather-free kernels (False: SELL-16 as any model)
PERM_KERNELS = True  # one stream: in-register tables where the CPU has AVX-512BW (kernels_perm)
PAIR_KERNELS = True  # fixed point, many streams: int16 activations, pairs of non-zeros in int32 lanes (kernels_pairs)


def _fits(G: int, layers: list[LayerWeights]) -> bool:
    """Cluster kernels need whole clusters: G divides every matrix's row count."""
    return all((L.blocks * L.hidden) % G == 0 and L.proj % G == 0 for L in layers)


def _stack(xs: Sequence[np.ndarray], T: int, dtype) -> np.ndarray:
    out = np.zeros((T, len(xs), xs[0].shape[1]), dtype=dtype)
    for b, x in enumerate(xs):
        out[:len(x), b] = x
    return out


def _engine_cell(cell: str | CellSpec) -> CellSpec:
    """The description of ``cell``, once the engine has checked it has kernels for it."""
    spec = cell_spec(cell)
    cells.engine_cell(spec)
    return spec


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise EngineError(f"engine mode must be 'float' or 'fixed', not {mode!r}")


def _check_stack(layers: list[LayerWeights]) -> None:
    if not layers:
        raise EngineError("the model has no recurrent layers")
    for k, L in enumerate(layers[1:], 1):
        if L.input_dim != layers[k - 1].proj:
            raise EngineError(f"layer {k} takes {L.input_dim} inputs but layer {k - 1} gives {layers[k - 1].proj}")


def float32_layers(layers: Sequence[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """Dequantized layers (:meth:`QModel.dequantized`) in the float engine's type (a vector the
    layer lacks stays absent)."""
    return [{name: arr.astype(np.float32) for name, arr in L.items()} for L in layers]


KERNELS = {"float": KL, "fixed": KF}
__all__ = ["KERNELS", "LANES", "MODES", "Engine", "EngineError", "thread_groups"]
