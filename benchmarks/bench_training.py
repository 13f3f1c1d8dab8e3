"""Training and inference throughput of the LSTMP acoustic model, in frames per second.

Measures, for the ``default`` (256 cells, projection 128, 2 layers) and ``paper`` (input 153,
1024 cells, projection 512, 1 layer) shapes:

- train: forward + cross-entropy + backward + Adam step on a minibatch of chunks
  (``batch x chunk`` frames, as ``ese.model.train`` feeds them);
- forward: inference without gradients on the same batch;
- nn.LSTM forward: PyTorch's fused LSTM with projection (no peepholes) on the same shape, as a
  yardstick for the per-step loop;
- train bf16: the same training step under ``torch.autocast(bfloat16)`` (``train.precision =
  "bf16"``; weights, gradients and optimizer stay fp32), and nn.LSTM's training step likewise;
- train compiled (``--compile``): the step with the model wrapped in ``torch.compile``.

Run: ``python benchmarks/bench_training.py [--threads N] [--device cuda] [--repeats 3] [--compile]``.
The *worst* of ``--repeats`` timed runs is reported after one warm-up run (this machine is shared;
a figure that holds must hold in the slow run too); all columns of a row are measured in one run.
"""

from __future__ import annotations

import argparse
import platform
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

from ese.config import ModelConfig
from ese.model.lstmp import AcousticModel


@dataclass(frozen=True)
class Shape:
    name: str
    model: ModelConfig
    batch: int
    chunk: int


SHAPES = (
    Shape("default", ModelConfig(input_dim=153, hidden=256, proj=128, layers=2), batch=16, chunk=200),
    Shape("paper", ModelConfig(input_dim=153, hidden=1024, proj=512, layers=1), batch=32, chunk=200),
)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _worst_time(fn, repeats: int, device: torch.device) -> float:
    fn()  # warm-up (and compilation)
    _sync(device)
    worst = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        worst = max(worst, time.perf_counter() - t0)
    return worst


def bench(shape: Shape, repeats: int, device: torch.device, compile_: bool = False
          ) -> dict[str, float]:
    torch.manual_seed(0)
    cfg = shape.model
    model = AcousticModel(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(shape.batch, shape.chunk, cfg.input_dim, device=device)
    y = torch.randint(0, cfg.num_classes, (shape.batch, shape.chunk), device=device)
    frames = shape.batch * shape.chunk
    lstm = torch.nn.LSTM(cfg.input_dim, cfg.hidden, num_layers=cfg.layers, proj_size=cfg.proj,
                         batch_first=True).to(device)
    head = torch.nn.Linear(cfg.proj, cfg.num_classes).to(device)
    lstm_opt = torch.optim.Adam(list(lstm.parameters()) + list(head.parameters()), lr=1e-3)

    def step(net, optimizer, params, bf16: bool) -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = net(x)
        loss = F.cross_entropy(logits.float().reshape(-1, cfg.num_classes), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()

    ours = lambda inp: model(inp)[0]  # noqa: E731
    theirs = lambda inp: head(lstm(inp)[0])  # noqa: E731
    lstm_params = list(lstm.parameters()) + list(head.parameters())

    def forward() -> None:
        with torch.no_grad():
            model(x)

    def lstm_forward() -> None:
        with torch.no_grad():
            lstm(x)

    model.train()
    r = {"frames": frames}
    r["train"] = frames / _worst_time(lambda: step(ours, opt, model.parameters(), False), repeats, device)
    r["train_bf16"] = frames / _worst_time(lambda: step(ours, opt, model.parameters(), True), repeats, device)
    r["lstm_train"] = frames / _worst_time(lambda: step(theirs, lstm_opt, lstm_params, False), repeats, device)
    r["lstm_train_bf16"] = frames / _worst_time(lambda: step(theirs, lstm_opt, lstm_params, True), repeats, device)
    if compile_:
        compiled = torch.compile(model)
        r["train_compiled"] = frames / _worst_time(
            lambda: step(lambda inp: compiled(inp)[0], opt, model.parameters(), False), repeats, device)
    model.eval()
    t_fwd = _worst_time(forward, repeats, device)
    r["forward"] = frames / t_fwd
    r["lstm_forward"] = frames / _worst_time(lstm_forward, repeats, device)
    dense_ops = 2 * sum(p.numel() for n, p in model.named_parameters()
                        if n.split(".")[-1] in ("w_x", "w_r", "w_ym"))  # multiply + add per weight
    r["gops_fwd"] = dense_ops * frames / t_fwd / 1e9
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--shapes", nargs="*", default=[s.name for s in SHAPES])
    ap.add_argument("--compile", action="store_true", help="also time torch.compile(model)")
    args = ap.parse_args()
    import warnings
    warnings.filterwarnings("ignore", message="LSTM with projections")  # oneDNN lacks proj_size
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    where = (torch.cuda.get_device_name(device) if device.type == "cuda"
             else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")
    table = Table(title=f"LSTMP throughput (frames/s, worst of {args.repeats}) on {device.type}: "
                        f"{where}, torch {torch.__version__}")
    cols = ["shape", "batch x chunk", "train", "train bf16", "bf16 / fp32", "nn.LSTM train",
            "nn.LSTM train bf16", "forward", "nn.LSTM fwd", "forward / nn.LSTM", "fwd dense GOP/s"]
    if args.compile:
        cols.insert(5, "train compiled")
    for col in cols:
        table.add_column(col, justify="right" if col != "shape" else "left")
    for shape in SHAPES:
        if shape.name not in args.shapes:
            continue
        r = bench(shape, args.repeats, device, args.compile)
        row = [shape.name, f"{shape.batch} x {shape.chunk}", f"{r['train']:,.0f}",
               f"{r['train_bf16']:,.0f}", f"{r['train_bf16'] / r['train']:.2f}",
               f"{r['lstm_train']:,.0f}", f"{r['lstm_train_bf16']:,.0f}", f"{r['forward']:,.0f}",
               f"{r['lstm_forward']:,.0f}", f"{r['forward'] / r['lstm_forward']:.2f}",
               f"{r['gops_fwd']:.1f}"]
        if args.compile:
            row.insert(5, f"{r['train_compiled']:,.0f}")
        table.add_row(*row)
    Console().print(table)


if __name__ == "__main__":
    main()
