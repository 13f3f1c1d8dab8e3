"""``ese prune`` with train.threads = 0: one count for the whole run, chosen from the machine's
load (mocked here), said, reported, recorded in the work state and kept by a resume."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

import ese.stages.prune as stage
import ese.threads as T
from ese.stages.prune import prune_checkpoint
from ese.threads import torch_threads

from prune_toys import toy_config, toy_sets, train_dense


@pytest.fixture(scope="module")
def dense(tmp_path_factory):
    cfg, sets = toy_config(), toy_sets()
    path = train_dense(cfg, sets, tmp_path_factory.mktemp("dense") / "dense.pt")
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, threads=0)), sets, path


def _load(monkeypatch, busy: float) -> None:
    monkeypatch.setattr(T, "usable_cores", lambda: 2)
    monkeypatch.setattr(T, "busy_cores", lambda interval=T.SAMPLE_S: (busy, "mocked"))


def test_the_chosen_count_is_said_reported_and_kept_by_a_resume(dense, tmp_path: Path, monkeypatch):
    cfg, sets, path = dense
    _load(monkeypatch, 0.0)  # quiet: 2 threads
    real, said, seen = stage.train_model, [], []

    def dies(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(stage, "train_model", dies)
    with torch_threads(2), pytest.raises(KeyboardInterrupt):  # killed in the first retraining
        prune_checkpoint(path, cfg, sets, tmp_path / "b.pt", progress=False, say=said.append)
    assert said[0].startswith("threads: 2 (automatic: 0.0 of 2 cores busy")
    monkeypatch.setattr(stage, "train_model", real)
    _load(monkeypatch, 1.0)  # busy now: a fresh run would take 1
    with torch_threads(2):
        report = prune_checkpoint(path, cfg, sets, tmp_path / "b.pt", progress=False, resume=True,
                                  on_epoch=lambda row, sel: seen.append(torch.get_num_threads()))
    assert report["threads"] == 2 and seen and set(seen) == {2}

    with torch_threads(2):
        fresh = prune_checkpoint(path, cfg, sets, tmp_path / "c.pt", progress=False,
                                 on_epoch=lambda row, sel: seen.append(torch.get_num_threads()))
    assert fresh["threads"] == 1 and seen[-1] == 1
