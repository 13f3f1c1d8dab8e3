"""`ese simulate` and `ese sweep`: the cycle model of a program (and its functional trace)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Optional

import typer

from ese.commands.shared import BackendOpt, RayAddressOpt
from ese.outputs import writes

FramesOpt = Annotated[int, typer.Option("--frames", help="Frames per simulated utterance.")]


def register(app: typer.Typer) -> None:
    """Add this stage's commands to ``app``."""
    app.command("simulate")(simulate)
    app.command("sweep")(sweep)


def _hardware(base, **overrides):
    from ese.accel.retarget import check_hardware

    hw = dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})
    check_hardware(hw)
    return hw


def _int_list(text: str, option: str) -> list[int]:
    from ese.errors import ConfigError

    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{option} must be comma-separated integers like 8,16,32, not {text!r}") from None
    if not values or min(values) < 1:
        raise ConfigError(f"{option} must list positive integers, not {text!r}")
    return values


@writes("json_path", "trace")  # not all-or-none: a --check mismatch keeps its trace
def simulate(
    model: Annotated[Path, typer.Argument(help="Program image (.ese) or fixed-point model (.qnpz, compiled here).")],
    pes: Annotated[Optional[int], typer.Option("--pes", help="PEs per channel (re-encodes the model).")] = None,
    index_bits: Annotated[Optional[int], typer.Option("--index-bits", help="Relative index width (re-encodes).")] = None,
    queue_depth: Annotated[Optional[int], typer.Option("--queue-depth", help="ActQueue entries per PE.")] = None,
    clock_mhz: Annotated[Optional[float], typer.Option("--clock-mhz", help="Clock frequency in MHz.")] = None,
    channels: Annotated[Optional[int], typer.Option("--channels", help="Channels sharing the weight stream.")] = None,
    external: Annotated[bool, typer.Option("--external-weights", help="Stream weights from external memory.")] = False,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override one setting: hardware.key=value.")] = None,
    frames: FramesOpt = 100,
    trace: Annotated[Optional[Path], typer.Option("--trace", help="Also run the functional model and dump every "
                                                                  "vector of every step to this .npz.")] = None,
    trace_input: Annotated[Optional[Path], typer.Option("--input", help="Float features (T, D) .npy for --trace "
                                                                        "(default: --frames random smooth frames).")] = None,
    check: Annotated[bool, typer.Option("--check", help="With --trace: compare with the reference model.")] = False,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write the report JSON here.")] = None,
) -> None:
    """Cycle-level model of one channel: cycles, latency, utilisation and GOPS per frame, with the gap
    to the ideal explained term by term (docs/cycle-model.md)."""
    from ese.accel.cycles import simulate as run_model
    from ese.accel.retarget import load_program
    from ese.atomic import write_json
    from ese.commands.shared import console
    from ese.config import Config
    from ese.filekind import model_kind_or_suffix
    from ese.report.tables import print_table

    base = Config.load(overrides=[s for s in (set_ or [])]).hardware
    fixed_point = model_kind_or_suffix(model) == "qmodel"  # by content; the name only for a damaged file
    program = load_program(model, base if fixed_point else None)
    start = base if fixed_point or set_ else program.hardware
    hw = _hardware(start, pes=pes, index_bits=index_bits, queue_depth=queue_depth, clock_mhz=clock_mhz,
                   channels=channels, weights_on_chip=False if external else None)
    rep = run_model(program, hw, frames)
    out = rep.to_json()
    out["model"] = str(model)
    total = out["cycles_per_frame"]
    print_table(f"{model.name}: {hw.pes} PEs, queue {hw.queue_depth}, {hw.index_bits}-bit index, "
                f"{hw.clock_mhz:g} MHz, {hw.channels} channel(s)", ["", "value"],
                [["cycles per frame", total], ["ideal cycles per frame", out["ideal_cycles_per_frame"]],
                 ["latency per frame (us)", out["latency_us"]], ["utilisation %", 100 * out["utilization"]],
                 ["MAC utilisation (no padding) %", 100 * out["mac_utilization"]],
                 ["GOPS sparse / dense-equiv. (1 channel)", f"{out['gops_sparse']:.2f} / {out['gops_dense_equivalent']:.1f}"],
                 *([[f"GOPS sparse / dense-equiv. ({hw.channels} channels)",
                     f"{out['gops_sparse_all_channels']:.2f} / {out['gops_dense_equivalent_all_channels']:.1f}"]]
                   if hw.channels > 1 else []),
                 ["limited by", out["limited_by"]]], console)
    print_table("where the cycles of a frame go", ["term", "cycles/frame", "% of total"],
                [[k, v, 100 * v / total] for k, v in out["breakdown"].items()] + [["total", total, 100.0]], console)
    pe = out["per_pe"]
    print_table("per PE, cycles per frame", ["", "min", "mean", "max"],
                [[k, pe[f"{k}_spread"]["min"], pe[f"{k}_spread"]["mean"], pe[f"{k}_spread"]["max"]]
                 for k in ("busy", "idle", "stalled")], console)
    if trace is not None:
        out["trace"] = _trace(program, trace, trace_input, frames, check)
        console.print(f"trace: {trace}" + (f" ({out['trace']['check']})" if check else ""))
    if json_path:
        write_json(json_path, out)
        console.print(f"wrote {json_path}")


def _trace(program, path: Path, features: Optional[Path], frames: int, check: bool) -> dict:
    import numpy as np

    from ese.accel.errors import AccelError
    from ese.accel.functional import FunctionalModel
    from ese.accel.trace_io import first_difference, save_trace
    from ese.compress.reference import ReferenceModel

    ref = ReferenceModel(program.to_qmodel())
    if features is not None:
        try:
            feats = np.load(features, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise AccelError(f"cannot read features {str(features)!r}: {exc}") from None
    else:
        rng = np.random.default_rng(0)
        feats = np.cumsum(rng.normal(scale=0.3, size=(frames, program.model.input_dim)), axis=0)
    x = feats if np.asarray(feats).dtype.kind in "iu" else ref.quantize_input(feats)
    trace = FunctionalModel(program).run(x)
    result = {"path": str(path), "frames": int(len(x))}
    if check:
        d = first_difference(trace, ref.run(x), "functional", "reference")
        result["check"] = "equal to the reference model" if d is None else f"DIFFERS: {d}"
        if d is not None:
            save_trace(path, trace, {"source": "ese simulate --trace"})
            raise AccelError(f"functional model differs from the reference: {d}")
    save_trace(path, trace, {"source": "ese simulate --trace", "frames": int(len(x))})
    return result


@writes(dirs=("out",), all_or_none=True)
def sweep(
    models: Annotated[list[Path], typer.Argument(help="Fixed-point models (.qnpz), e.g. balanced and unbalanced.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for sweep.json, sweep.md and the plots.")] = Path("runs/sweep"),
    pes: Annotated[str, typer.Option("--pes", help="PE counts.")] = "8,16,32,64,128",
    queue_depths: Annotated[str, typer.Option("--queue-depths", help="ActQueue depths.")] = "1,2,4,8,16,32",
    index_bits: Annotated[str, typer.Option("--index-bits", help="Index widths (at the base PEs/queue).")] = "2,3,4,5,6,8",
    channels: Annotated[str, typer.Option("--channels", help="Channel counts (weights streamed externally).")] = "1,2,4,8",
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Base setting: hardware.key=value.")] = None,
    frames: FramesOpt = 20,
    jobs: Annotated[int, typer.Option("--jobs", help="Worker processes, 0 = all cores.")] = 0,
    target: Annotated[float, typer.Option("--target", help="Utilisation the proposal must reach.")] = 0.95,
    metric: Annotated[str, typer.Option("--metric", help="mac_utilization (padding not counted as work) or "
                                                         "utilization.")] = "mac_utilization",
    full_grid: Annotated[bool, typer.Option("--full-grid", help="Also PEs x queue depths at every --index-bits "
                                                                "(the full product).")] = False,
    backend: BackendOpt = "local",
    ray_address: RayAddressOpt = "",
) -> None:
    """Design-space sweep of the cycle model (PEs, queue depths, index widths, channels) in parallel;
    writes a JSON and Markdown table and plots, and proposes a configuration reaching --target."""
    from ese.accel.errors import AccelError
    from ese.accel.sweep import grid, propose, run_sweep
    from ese.stages.sweep import write_markdown
    from ese.atomic import write_json
    from ese.commands.shared import console
    from ese.config import Config
    from ese.report import accel_plots
    from ese.report.tables import print_table

    base = Config.load(overrides=list(set_ or [])).hardware
    if metric not in ("mac_utilization", "utilization"):
        raise AccelError(f"--metric must be mac_utilization or utilization, not {metric!r}")
    labels: dict[str, str] = {}
    for m in models:
        if m.suffix != ".qnpz" or not m.is_file():
            raise AccelError(f"ese sweep needs existing fixed-point models (.qnpz), not {str(m)!r}")
        labels[m.stem] = str(m)
    points = grid(labels, base, _int_list(pes, "--pes"), _int_list(queue_depths, "--queue-depths"),
                  _int_list(index_bits, "--index-bits"), _int_list(channels, "--channels"), full=full_grid)
    from ese.parallel import check_backend

    rows = run_sweep(points, base, frames, jobs, backend=check_backend(backend), ray_address=ray_address)
    proposal = propose(rows, target, metric)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "sweep.json", {"base_hardware": dataclasses.asdict(base), "frames": frames, "rows": rows,
                                    "proposal": proposal})
    write_markdown(rows, out / "sweep.md")
    plots = [accel_plots.utilization_vs_pes(rows, out / "utilization_vs_pes.png", base.queue_depth),
             accel_plots.pareto_latency_vs_pes(rows, out / "pareto_latency_vs_pes.png")]
    plots += [accel_plots.latency_vs_queue(rows, out / f"latency_vs_queue_{label}.png", label) for label in labels]
    depths = _int_list(queue_depths, "--queue-depths")
    q = base.queue_depth if base.queue_depth in depths else max(depths)
    print_table(f"utilisation % (queue depth {q}, {base.index_bits}-bit index)",
                ["model", *[f"{n} PEs" for n in _int_list(pes, "--pes")]],
                [[label, *[100 * r["utilization"] for r in rows if r["model"] == label and r["family"] == "pes_x_queue"
                           and r["queue_depth"] == q]] for label in labels], console)
    for label, p in proposal.items():
        r = p["point"]
        what = f"{r['pes']} PEs, queue {r['queue_depth']}, {r['index_bits']}-bit index: " \
               f"{100 * r['utilization']:.1f}% utilisation ({100 * r['mac_utilization']:.1f}% without padding), " \
               f"{r['latency_us']:.1f} us/frame"
        console.print(f"{label}: " + (f"reaches {100 * target:.0f}% {metric} with {what}" if p["reaches_target"] else
                                      f"best {what}; stopped by {p['stopped_by']}"))
    console.print(f"wrote {out / 'sweep.json'}, {out / 'sweep.md'}, " + ", ".join(str(p) for p in plots))
