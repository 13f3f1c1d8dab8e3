"""`ese prune` and `ese sensitivity` end to end, as a user runs them (subprocess)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ese.config import Config
from ese.data.store import load_split
from ese.model.checkpoint import load_checkpoint
from ese.model.train import train_model

pytestmark = pytest.mark.slow  # prunes with retraining through the CLI (minutes)


def _ese(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ese", *args], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def tiny_checkpoint(tone_corpus, tmp_path_factory) -> Path:
    """A one-epoch tiny-preset model on the tone corpus; features cached beside it."""
    cfg = Config.load(preset="tiny")
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=1, threads=1))
    ckpt = tmp_path_factory.mktemp("tiny") / "model.pt"
    sets = {s: load_split(tone_corpus, s, cfg.features, cache_dir=ckpt.parent / "features",
                          progress=False) for s in ("train", "dev", "test")}
    train_model(cfg, sets["train"], sets["dev"], ckpt, progress=False)
    return ckpt


def test_prune_balanced_and_unbalanced(tiny_checkpoint: Path, tone_corpus: Path, tmp_path: Path) -> None:
    common = ["--corpus", str(tone_corpus), "--density", "0.25", "--steps", "0.5",
              "--retrain-epochs", "1", "--quiet"]
    res = _ese("prune", str(tiny_checkpoint), "--out", str(tmp_path / "bal.pt"), "--balance", "pes:8",
               "--json", str(tmp_path / "bal.json"), *common)
    assert res.returncode == 0, res.stderr
    assert "layers.0.w_x" in res.stdout and "max/mean" in res.stdout
    report = json.loads((tmp_path / "bal.json").read_text())
    assert {"density", "matrices", "imbalance_max_over_mean", "per_dev", "per_test", "per_dense_dev",
            "per_dense_test", "balance", "n_pes"} <= set(report)
    assert report["balance"] == "pes:8" and report["n_pes"] == 8
    assert report["density"] == pytest.approx(0.25, abs=0.005)
    m = report["matrices"]["layers.0.w_x"]
    assert set(m) >= {"density", "nnz", "nnz_per_pe", "imbalance_max_over_mean"}
    assert m["nnz_per_pe"]["max"] - m["nnz_per_pe"]["min"] <= 1  # 32 cells over 8 PEs
    model, meta = load_checkpoint(tmp_path / "bal.pt")
    assert int((model.layers[0].w_x != 0).sum()) <= m["nnz"]
    assert meta["masks"]["layers.0.w_x"].sum().item() == m["nnz"]

    res = _ese("prune", str(tiny_checkpoint), "--out", str(tmp_path / "none.pt"), "--balance", "none",
               "--json", str(tmp_path / "none.json"), *common)
    assert res.returncode == 0, res.stderr
    unbal = json.loads((tmp_path / "none.json").read_text())
    assert unbal["balance"] == "none" and unbal["n_pes"] == 32
    assert unbal["imbalance_max_over_mean"] > report["imbalance_max_over_mean"]


def test_prune_user_errors(tiny_checkpoint: Path, tone_corpus: Path, tmp_path: Path) -> None:
    res = _ese("prune", str(tiny_checkpoint), "--corpus", str(tone_corpus), "--out",
               str(tmp_path / "x.pt"), "--density", "1.5", "--quiet")
    assert res.returncode == 1
    assert "prune.density must be in (0, 1]" in res.stderr and "not 1.5" in res.stderr
    assert "Traceback" not in res.stderr
    res = _ese("prune", str(tmp_path / "missing.pt"), "--corpus", str(tone_corpus), "--out",
               str(tmp_path / "x.pt"), "--quiet")
    assert res.returncode == 1 and "does not exist" in res.stderr
    assert not (tmp_path / "x.pt").exists()


def test_sensitivity_command(tiny_checkpoint: Path, tone_corpus: Path, tmp_path: Path) -> None:
    res = _ese("sensitivity", str(tiny_checkpoint), "--corpus", str(tone_corpus), "--out",
               str(tmp_path / "sens"), "--densities", "1,0.3,0.1", "--balance", "pes:4", "--quiet")
    assert res.returncode == 0, res.stderr
    table = json.loads((tmp_path / "sens" / "sensitivity.json").read_text())
    assert table["densities"] == [1.0, 0.3, 0.1]
    assert set(table["allocation"]["densities"]) == set(table["matrices"])
    assert (tmp_path / "sens" / "sensitivity.png").exists()
    assert (tmp_path / "sens" / "sensitivity.md").read_text().startswith("# Pruning sensitivity")
    assert torch.load(tiny_checkpoint, weights_only=True)["format"] == "ese-checkpoint"


def test_prune_gradual_with_distillation_and_seed(tiny_checkpoint: Path, tone_corpus: Path,
                                                  tmp_path: Path) -> None:
    res = _ese("prune", str(tiny_checkpoint), "--corpus", str(tone_corpus), "--out",
               str(tmp_path / "g.pt"), "--density", "0.25", "--balance", "pes:4", "--recipe",
               "gradual", "--distill", "0.5", "--seed", "3", "--set", "prune.ramp_epochs=1",
               "--set", "prune.finetune_epochs=1", "--json", str(tmp_path / "g.json"), "--quiet")
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "g.json").read_text())
    assert report["method"] == "gradual" and report["distill"] == 0.5
    assert report["recipe"]["train"]["seed"] == 3
    assert report["recipe"]["prune"]["ramp_epochs"] == 1
    assert report["density"] == pytest.approx(0.25, abs=0.005)
    assert report["compute"]["epochs"] == len(report["compute_steps"][0]["history"]) >= 1
    res = _ese("prune", str(tiny_checkpoint), "--corpus", str(tone_corpus), "--out",
               str(tmp_path / "x.pt"), "--recipe", "gradual", "--distill", "2", "--quiet")
    assert res.returncode == 1 and "prune.distill must be in [0, 1]" in res.stderr
