"""One rank of a data-parallel training run on the toy task, for tests/model/test_distributed.py.

Run as ``torchrun --nproc-per-node N tests/model/ddp_worker.py MODE OUT`` (or in-process through
:func:`run`). Each rank writes ``OUT/rank<r>.pt``: its final (best) weights and masks; rank 0 also
writes the checkpoint ``OUT/ckpt.pt``. MODE: ``dense`` (plain training), ``masked`` (fixed
masks), ``gradual`` (cubic ramp + distillation), ``die`` (rank 1 exits in the middle of epoch 2).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ for toy_data

from ese.compress.gradual import GradualPruning  # noqa: E402
from ese.compress.prune import MagnitudePruner, make_pruner  # noqa: E402
from ese.config import Config, ModelConfig, TrainConfig  # noqa: E402
from ese.model.lstmp import AcousticModel  # noqa: E402
from ese.model.train import Distillation, train_model  # noqa: E402
from toy_data import TOY_DIM, toy_featureset  # noqa: E402

MODES = ("dense", "masked", "gradual", "die")


def config(mode: str) -> Config:
    epochs = 4 if mode == "gradual" else 3
    return Config(model=ModelConfig(input_dim=TOY_DIM, hidden=24, proj=12, layers=1),
                  train=TrainConfig(epochs=epochs, batch_size=8, chunk_frames=25, lr=1e-2,
                                    output_delay=2, patience=3, threads=1, seed=7))


def run(mode: str, out: Path, resume: bool = False) -> None:
    cfg = config(mode)
    train, dev = toy_featureset("train", 40, seed=1), toy_featureset("dev", 12, seed=2)
    kwargs: dict = {}
    if mode == "masked":
        torch.manual_seed(3)
        start = AcousticModel(cfg.model)
        kwargs = {"init_weights": start.state_dict(),
                  "masks": MagnitudePruner(0.3).compute_masks(start)}
    elif mode == "gradual":
        torch.manual_seed(3)
        teacher = AcousticModel(cfg.model)
        kwargs = {"init_weights": teacher.state_dict(),
                  "mask_schedule": GradualPruning(make_pruner("pes:4", 0.25), 0.25, ramp_epochs=2,
                                                  updates_per_epoch=2),
                  "distill": Distillation(teacher, weight=0.5, temperature=2.0)}
    elif mode == "die" and int(os.environ.get("RANK", "0")) == 1:
        from ese.model import train as train_mod

        real_batch, real_eval, seen = train_mod._Chunks.batch, train_mod.evaluate, {"evals": 0, "batches": 0}

        def evaluate(*args, **kw):  # counts finished epochs
            seen["evals"] += 1
            return real_eval(*args, **kw)

        def batch(self, ids):  # rank 1 dies at the third batch of the second epoch
            if seen["evals"] == 1:
                seen["batches"] += 1
                if seen["batches"] == 3:
                    os._exit(3)
            return real_batch(self, ids)

        train_mod._Chunks.batch, train_mod.evaluate = batch, evaluate
    res = train_model(cfg, train, dev, out / "ckpt.pt", resume=resume, progress=False, **kwargs)
    rank = int(os.environ.get("RANK", "0"))
    torch.save({"weights": res.model.state_dict(), "masks": res.masks,
                "history": res.history}, out / f"rank{rank}.pt")


if __name__ == "__main__":
    run(sys.argv[1], Path(sys.argv[2]), resume=len(sys.argv) > 3 and sys.argv[3] == "resume")
