"""Roofline of the engine's batch-1 step (issue 16): bytes and multiply-adds per step, and the
rate each kernel reaches, one thread, for the shipped model and cluster:G models of its shape.

    .venv/bin/python benchmarks/bench_roofline.py [--model models/paper/paper-b32-d11-w12a16.qnpz]

Per model and mode it times (best of 7 rounds of 400 steps, wall clock, 1 thread): the whole
step, the step with the matrices removed (element-wise stage and call overhead) and the matrices
alone (the element-wise stage given no cells), and prints the matrix products' rate in
multiply-adds per ns and the weight bytes they stream per step. The stored-entry counts include
the layouts' padding (SELL-16: sorted-slice padding; clusters: odd columns padded to pairs).
"""

from __future__ import annotations

import os
import sys
import time

import numba
import numpy as np

from ese.compress.qmodel import load_qmodel
from ese.runtime import Engine
from ese.runtime import kernels_perm as KP
from ese.runtime.bench import DEFAULT_MODEL, cluster_qmodel, model_density, synthetic_qmodel


def _best(fn, n: int = 400, rounds: int = 7) -> float:
    fn()
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t) / n)
    return best * 1e6


def _weight_bytes(eng: Engine, rec) -> tuple[int, int]:
    """(stored entries, bytes of the matrices the batch-1 kernels read per step)."""
    st = rec.states[0]
    if st.perm is not None:
        mats = [st.perm.gx, st.perm.gp]
        return sum(m.stored for m in mats), sum(m.nbytes for m in mats)
    if st.cl is not None:
        mats = [st.cl["gx"], st.cl["gp"]]
        entries = sum(m.vals.size for m in mats)
        return entries, sum(m.vals.nbytes + m.cols.nbytes + m.ptr.nbytes for m in mats)
    L = eng.layers[0]
    mats = [L.gx, L.gp]
    return sum(m.vals.size for m in mats), sum(m.vals.nbytes + m.cols.nbytes + m.ptr.nbytes + m.rows.nbytes for m in mats)


def _perm_parts(rec, x) -> tuple[float, float]:
    """perm64 / perm32: (the step without the products, the products without the element-wise
    stage): the kernel's arguments with no slices, and with no cells."""
    name = "step_perm" if rec.fixed else "step_perm_float"
    # argument positions (Recognizer._perm_args): gate slices, cell bounds, output-matrix slices
    gates, cells, outs = (9, 21, 29) if rec.fixed else (8, 20, 27)
    captured = []
    kernel = getattr(KP, name)
    setattr(KP, name, lambda *a: captured.append(a))
    try:
        rec.step_layers(x)
    finally:
        setattr(KP, name, kernel)
    a = list(captured[0])
    no_products = list(a)
    no_products[gates] = np.full_like(a[gates], -1)
    no_products[outs] = np.full_like(a[outs], -1)
    no_cells = list(a)
    no_cells[cells] = np.zeros_like(a[cells])
    return _best(lambda: kernel(*no_products)), _best(lambda: kernel(*no_cells))


def main() -> None:
    args = sys.argv[1:]
    path = args[args.index("--model") + 1] if "--model" in args else DEFAULT_MODEL
    qm = load_qmodel(path)
    d = model_density(qm)
    models = [("shipped (pes:32)", qm), *[(f"cluster:{G}", cluster_qmodel(qm, d, G)) for G in (4, 8, 16)],
              ("dense", synthetic_qmodel(qm, 1.0))]
    numba.set_num_threads(1)
    feats = np.random.default_rng(0).standard_normal((1, 1, qm.model.input_dim)).astype(np.float32)
    print(f"load {os.getloadavg()[0]:.1f}; one thread; µs per step (best of 7 x 400 steps)")
    print("| model | mode | kernel | MACs/step | stored entries | weight bytes/step | step µs | element-wise + call µs "
          "| matrices µs | MAC/ns (matrices) | GB/s (weights) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, q in models:
        macs = sum(int(np.count_nonzero(getattr(L, k))) for L in q.layers for k in ("w_x", "w_r", "w_ym"))
        for mode in ("fixed", "float"):
            eng = Engine.from_qmodel(q, mode, threads=1)
            rec = eng.recognizer(1)
            x = eng.quantize_input(feats)[0]
            step = _best(lambda: rec.step_layers(x))
            st = rec.states[0]
            if st.perm is not None:
                ew, mats = _perm_parts(rec, x)
                entries, nbytes = _weight_bytes(eng, rec)
                print(f"| {name} | {mode} | {rec.kernel} | {macs} | {entries} | {nbytes} | {step:.1f} | {ew:.1f} "
                      f"| {mats:.1f} | {macs / (mats * 1e3):.1f} | {nbytes / (mats * 1e3):.1f} |")
                continue
            run = rec._run_cluster if st.cl is not None else rec._run_one
            captured = []
            orig = run

            def grab(*a, st=st):
                captured.append(a)
                return st.y_out
            if st.cl is not None:
                rec._run_cluster = grab
            else:
                rec._run_one = grab
            rec.step_layers(x)
            if st.cl is not None:
                del rec._run_cluster
            else:
                del rec._run_one
            a = captured[0]
            lists = ("gcl", "rcl", "pcl") if st.cl is not None else ("gsl", "rsl", "psl")
            saved = {k: getattr(st, k) for k in lists}
            cells = st.cells
            for k in lists:
                setattr(st, k, np.full_like(saved[k], -1))
            a_ew = list(a)
            if st.cl is None:  # _run_one takes the gate slices as an argument
                a_ew[3] = np.full_like(a[3], -1)
            ew = _best(lambda: orig(*a_ew))
            for k in lists:
                setattr(st, k, saved[k])
            st.cells = np.array([0, 0], np.int64)
            mats = _best(lambda: orig(*a))
            st.cells = cells
            entries, nbytes = _weight_bytes(eng, rec)
            print(f"| {name} | {mode} | {rec.kernel} | {macs} | {entries} | {nbytes} | {step:.1f} | {ew:.1f} "
                  f"| {mats:.1f} | {macs / (mats * 1e3):.1f} | {nbytes / (mats * 1e3):.1f} |")


if __name__ == "__main__":
    main()
