"""Data-parallel training (ese.distributed): 2 processes on gloo end where 1 process ends.

The 2-process runs start two real processes (tests/model/ddp_worker.py) that join through the
same environment variables torchrun sets, on a free local port; one test runs the real
``torchrun ... -m ese train``.

Tolerance. Both runs see the same global batches in the same order and apply the same updates;
the only difference is arithmetic order: each rank sums its half of the batch's loss and the
two halves' gradients are added, where one process sums them in one pass (and matmul kernels see
other batch shapes). That is float32 rounding, a relative 1e-7 per gradient; the runs below
(about 30 Adam steps at lr 1e-2, weights of order 0.1 to 1) end within 2e-6 of each other
(measured: 1.8e-7 dense, 1.5e-7 masked, 1.1e-6 gradual with distillation, whose mask updates
amplify the most). TOL = 2e-5 leaves a margin of 10x over the worst, and is 50x smaller than
what a real error does: the same run at half the learning rate (a gradient averaged instead of
summed over the ranks) ends more than 1e-3 away, checked in the first test.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import ddp_worker
from ese import distributed

TOL = 2e-5
WORKER = Path(__file__).with_name("ddp_worker.py")
SRC = Path(__file__).resolve().parents[2] / "src"

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
        [str(SRC), os.environ.get("PYTHONPATH", "")]))
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(key, None)
    return {**env, **extra}


def launch(mode: str, out: Path, world: int = 2, timeout_s: float = 20) -> list[subprocess.CompletedProcess]:
    """``world`` ranks of the worker, as torchrun would start them; each one's result."""
    port = str(_free_port())
    procs = [subprocess.Popen([sys.executable, str(WORKER), mode, str(out)],
                              env=_env(RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE=str(world),
                                       MASTER_ADDR="127.0.0.1", MASTER_PORT=port,
                                       ESE_DIST_TIMEOUT_S=str(timeout_s)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for r in range(world)]
    results = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return results


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> dict[str, dict]:
    """The 1-process runs of every mode (in this process)."""
    out = {}
    for mode in ("dense", "masked", "gradual"):
        d = tmp_path_factory.mktemp(f"one-{mode}")
        ddp_worker.run(mode, d)
        out[mode] = torch.load(d / "rank0.pt")
    return out


@pytest.mark.parametrize("mode", ["dense", "masked", "gradual"])
def test_two_processes_end_with_the_weights_of_one(mode, one_process, tmp_path, monkeypatch) -> None:
    results = launch(mode, tmp_path)
    assert all(r.returncode == 0 for r in results), [r.stderr[-2000:] for r in results]
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    one = one_process[mode]
    # the ranks hold bit-identical weights and masks: they applied the same summed gradients
    assert _max_diff(ranks[0]["weights"], ranks[1]["weights"]) == 0.0
    assert _max_diff(ranks[0]["weights"], one["weights"]) < TOL
    hist1, hist2 = one["history"], ranks[0]["history"]
    assert [h["epoch"] for h in hist1] == [h["epoch"] for h in hist2]
    for h1, h2 in zip(hist1, hist2):  # the train loss is the global batch's, not a shard's
        assert h2["train_loss"] == pytest.approx(h1["train_loss"], rel=1e-5)
    if mode != "dense":
        masks = [r["masks"] for r in ranks]
        for name, m in masks[0].items():
            assert torch.equal(m, masks[1][name]) and torch.equal(m, one["masks"][name])
            for rk in ranks:  # pruned weights exactly zero on every rank
                assert float(rk["weights"][name][~m].abs().max()) == 0.0
        assert 0 < sum(int(m.sum()) for m in masks[0].values()) < sum(m.numel() for m in masks[0].values())
    assert (tmp_path / "ckpt.pt").exists()  # written by rank 0
    if mode == "dense":  # the tolerance tells a real error apart: half the learning rate
        cfg = ddp_worker.config("dense")
        half = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, lr=cfg.train.lr / 2))
        monkeypatch.setattr(ddp_worker, "config", lambda mode: half)
        ddp_worker.run("dense", tmp_path / "half")
        wrong = torch.load(tmp_path / "half" / "rank0.pt")
        assert _max_diff(wrong["weights"], one["weights"]) > 50 * TOL


def test_a_rank_that_dies_stops_the_job_and_the_checkpoint_resumes_at_another_count(
        one_process, tmp_path) -> None:
    results = launch("die", tmp_path, timeout_s=20)
    assert results[1].returncode == 3  # it died in epoch 2
    assert results[0].returncode != 0  # the other stopped (did not hang: communicate() returned)
    assert "another process of the job stopped" in results[0].stderr
    state = torch.load(tmp_path / "ckpt.pt", weights_only=False)
    assert state["epoch"] == 1  # the last complete epoch, written before the failure
    # resume the 2-process checkpoint in 1 process: it ends where the uninterrupted run ends
    ddp_worker.run("dense", tmp_path, resume=True)
    resumed = torch.load(tmp_path / "rank0.pt")
    assert len(resumed["history"]) == 3
    assert _max_diff(resumed["weights"], one_process["dense"]["weights"]) < TOL


def test_shards_cover_the_global_batch_once() -> None:
    ids = list(range(11))
    parts = [distributed.shard(ids, 3, r) for r in range(3)]
    assert sorted(sum(parts, [])) == ids
    assert parts[0] == [0, 3, 6, 9]


def test_one_process_needs_no_process_group(monkeypatch) -> None:
    for key in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    assert distributed.world_size() == 1 and distributed.is_main() and not distributed.active()
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert not distributed.is_main()
    monkeypatch.setenv("ESE_DIST_TIMEOUT_S", "soon")
    with pytest.raises(distributed.DistributedError, match="ESE_DIST_TIMEOUT_S"):
        distributed.timeout_s()


def test_torchrun_runs_ese_train_unchanged(tone_corpus, tmp_path) -> None:
    """The real command line: torchrun -m ese train, 2 processes; rank 0 alone prints and writes."""
    out = tmp_path / "m.pt"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "ese", "train", "--corpus", str(tone_corpus), "--out", str(out), "--preset", "tiny",
           "--set", "train.epochs=2", "--quiet", "--json", str(tmp_path / "train.json")]
    r = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("training (best epoch") == 1  # one table: rank 0's
    state = torch.load(out, weights_only=False)
    assert state["epoch"] == 2 and (tmp_path / "train.json").exists()
    # and it resumes in one process (plain ese) from the 2-process checkpoint
    r = subprocess.run([sys.executable, "-m", "ese", "train", "--corpus", str(tone_corpus), "--out", str(out),
                        "--preset", "tiny", "--set", "train.epochs=3", "--resume", "--quiet"],
                       env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert torch.load(out, weights_only=False)["epoch"] == 3
