"""Training and inference throughput of the LSTMP acoustic model, in frames per second.

Measures, for the ``default`` (256 cells, projection 128, 2 layers) and ``paper`` (input 153,
1024 cells, projection 512, 1 layer) shapes:

- train: forward + cross-entropy + backward + Adam step on a minibatch of chunks
  (``batch x chunk`` frames, as ``ese.model.train`` feeds them);
- forward: inference without gradients on the same batch;
- nn.LSTM forward: PyTorch's fused LSTM with projection (no peepholes) on the same shape, as a
  yardstick for the per-step loop.

Run: ``python benchmarks/bench_training.py [--threads N] [--device cuda] [--repeats 3]``.
The best of ``--repeats`` timed runs is reported after one warm-up run.
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


def _best_time(fn, repeats: int, device: torch.device) -> float:
    fn()  # warm-up
    _sync(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def bench(shape: Shape, repeats: int, device: torch.device) -> dict[str, float]:
    torch.manual_seed(0)
    cfg = shape.model
    model = AcousticModel(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(shape.batch, shape.chunk, cfg.input_dim, device=device)
    y = torch.randint(0, cfg.num_classes, (shape.batch, shape.chunk), device=device)
    frames = shape.batch * shape.chunk

    def train_step() -> None:
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, cfg.num_classes), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    def forward() -> None:
        with torch.no_grad():
            model(x)

    lstm = torch.nn.LSTM(cfg.input_dim, cfg.hidden, num_layers=cfg.layers, proj_size=cfg.proj,
                         batch_first=True).to(device)

    def lstm_forward() -> None:
        with torch.no_grad():
            lstm(x)

    model.train()
    t_train = _best_time(train_step, repeats, device)
    model.eval()
    t_fwd = _best_time(forward, repeats, device)
    t_ref = _best_time(lstm_forward, repeats, device)
    dense_ops = 2 * sum(p.numel() for n, p in model.named_parameters()
                        if n.split(".")[-1] in ("w_x", "w_r", "w_ym"))  # multiply + add per weight
    return {"frames": frames, "train": frames / t_train, "forward": frames / t_fwd,
            "lstm_forward": frames / t_ref, "gops_fwd": dense_ops * frames / t_fwd / 1e9}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--shapes", nargs="*", default=[s.name for s in SHAPES])
    args = ap.parse_args()
    import warnings
    warnings.filterwarnings("ignore", message="LSTM with projections")  # oneDNN lacks proj_size
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    where = (torch.cuda.get_device_name(device) if device.type == "cuda"
             else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")
    table = Table(title=f"LSTMP throughput (frames/s) on {device.type}: {where}, torch {torch.__version__}")
    for col in ("shape", "batch x chunk", "train", "forward", "nn.LSTM fwd",
                "forward / nn.LSTM", "fwd dense GOP/s"):
        table.add_column(col, justify="right" if col != "shape" else "left")
    for shape in SHAPES:
        if shape.name not in args.shapes:
            continue
        r = bench(shape, args.repeats, device)
        table.add_row(shape.name, f"{shape.batch} x {shape.chunk}", f"{r['train']:,.0f}",
                      f"{r['forward']:,.0f}", f"{r['lstm_forward']:,.0f}",
                      f"{r['forward'] / r['lstm_forward']:.2f}", f"{r['gops_fwd']:.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()
