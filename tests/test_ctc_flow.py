"""A tiny CTC model, trained on word transcripts only (LibriSpeech layout), through every later
stage: ``ese run`` (train, evaluate, prune with distillation, quantize, compile, simulate), then
``ese eval`` / ``ese transcribe`` with both engines and the streaming recognizer."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from corpus_factory import make_word_corpus

from ese.compiler.image import load_program
from ese.compress.qmodel import load_qmodel
from ese.compress.quantize import evaluate_quantized
from ese.config import Config
from ese.data.export import write_layout
from ese.data.phones import BLANK
from ese.data.store import load_split
from ese.model.checkpoint import load_checkpoint
from ese.model.decode import transcribe
from ese.pipeline import run
from ese.runtime import Engine
from ese.runtime.decode import StreamDecoder, evaluate_engine, transcribe_engine

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ctc_run(tmp_path_factory):
    words = make_word_corpus(tmp_path_factory.mktemp("words"), speakers=4, utts=8)
    corpus = tmp_path_factory.mktemp("ls") / "LibriSpeech"
    write_layout(words, corpus, "librispeech")
    cfg = Config.load(preset="tiny", overrides=[
        "train.loss=ctc", "train.epochs=12", "train.patience=12", "train.lr=1e-2", "train.lr_decay=1.0", "train.batch_size=2", "train.threads=1",
        "prune.distill=0.5", "prune.distill_temperature=2.0"])
    workdir = tmp_path_factory.mktemp("run")
    report = run(cfg, workdir, corpus=corpus, progress=False)
    return cfg, corpus, workdir, report


def _ese(*args, cwd):
    out = subprocess.run([sys.executable, "-m", "ese", *map(str, args)], capture_output=True, text=True,
                         cwd=cwd, timeout=600)
    assert out.returncode == 0, out.stderr
    return out


def test_every_stage_keeps_the_ctc_output_layer(ctc_run):
    cfg, _, workdir, report = ctc_run
    print(report["training"]["history"])
    assert report["per"]["test"]["per"] < 80 and np.isnan(report["per"]["test"]["frame_acc"])
    comp = report["compression"]
    assert comp["distill"] == 0.5 and comp["per"]["test"]["quantized"] < 80
    for name in ("model.pt", "pruned.pt"):
        model, meta = load_checkpoint(workdir / name)
        assert model.cfg.num_classes == 49 and meta["phones"][-1] == BLANK and meta["config"]["train"]["loss"] == "ctc"
    qm = load_qmodel(workdir / "model.qnpz")
    program = load_program(workdir / "model.ese")
    assert qm.model.num_classes == program.model.num_classes == 49
    assert qm.phones[-1] == program.phones[-1] == BLANK
    assert report["simulate"]["cycles_per_frame"] > 0


def test_engines_decode_ctc_alike(ctc_run):
    cfg, corpus, workdir, report = ctc_run
    test = load_split(corpus, "test", cfg.features, cache_dir=workdir / "features", progress=False)
    qm = load_qmodel(workdir / "model.qnpz")
    want = evaluate_quantized(qm, test)
    assert want["per"] == pytest.approx(report["quantize"]["per_quantized"]["test"])
    for eng in (Engine.from_qmodel(qm), Engine.from_program(load_program(workdir / "model.ese"))):
        got = evaluate_engine(eng, test)  # the CPU engine, bit-exact with the integer reference
        assert (got["per"], got["sub"], got["del"], got["ins"]) == (want["per"], want["sub"], want["del"], want["ins"])
    pruned, meta = load_checkpoint(workdir / "pruned.pt")
    feats = test.utterances[0].feats
    eng = Engine.from_model(pruned, cfg.train.output_delay)
    assert transcribe_engine(eng, feats) == transcribe(pruned, feats, cfg.train.output_delay)
    # the streaming recognizer with the step-by-step decoder gives the same phones
    fixed = Engine.from_qmodel(qm)
    rec, dec = fixed.recognizer(1), StreamDecoder(fixed.num_classes)
    d = fixed.output_delay
    padded = np.concatenate([feats, np.repeat(feats[-1:], d, axis=0)])
    phones = []
    for t, frame in enumerate(padded):
        step = rec.push(frame)
        if t >= d:
            phones += dec.push(step)[0]
    phones += dec.finish(0)
    assert phones == transcribe_engine(fixed, feats)


def test_cli_eval_and_transcribe_use_the_ctc_decoder(ctc_run, tmp_path):
    _, corpus, workdir, report = ctc_run
    _ese("eval", workdir / "model.pt", "--corpus", corpus, "--split", "test", "--cache-dir", workdir / "features",
         "--quiet", "--json", tmp_path / "e.json", cwd=tmp_path)
    out = json.loads((tmp_path / "e.json").read_text())
    assert out["decoder"] == "ctc" and out["per"]["test"]["per"] == pytest.approx(report["per"]["test"]["per"])
    _ese("eval", workdir / "pruned.pt", "--corpus", corpus, "--split", "test", "--engine", "ese-cpu",
         "--qmodel", workdir / "model.qnpz", "--cache-dir", workdir / "features", "--quiet",
         "--json", tmp_path / "q.json", cwd=tmp_path)
    q = json.loads((tmp_path / "q.json").read_text())
    assert q["per"]["test"]["per"] == pytest.approx(report["quantize"]["per_quantized"]["test"])
    flac = next(corpus.glob("test/*/0/*.flac"))
    t = _ese("transcribe", workdir / "model.pt", flac, "--json", tmp_path / "t.json", cwd=tmp_path)
    phones = json.loads((tmp_path / "t.json").read_text())[str(flac)].split()
    assert phones and "<blank>" not in phones and str(flac) in t.stdout
