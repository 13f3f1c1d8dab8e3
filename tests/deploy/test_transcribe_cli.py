"""`ese transcribe` and `ese eval` on all three model files; --stream; bad model files (issue 14)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
from deploy_models import strip_qmodel


def _ese(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ese", *args], input=stdin, capture_output=True, timeout=300)


def _one_line(proc: subprocess.CompletedProcess) -> str:
    err = proc.stderr.decode()
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def whole(tiny_models, test_wav) -> str:
    proc = _ese("transcribe", str(tiny_models["qnpz"]), str(test_wav))
    assert proc.returncode == 0, proc.stderr.decode()
    name, phones = proc.stdout.decode().strip().split(": ", 1)
    assert name == str(test_wav) and phones
    return phones


def test_all_three_files_transcribe_alike(tiny_models, test_wav, whole):
    proc = _ese("transcribe", str(tiny_models["ese"]), str(test_wav))
    assert proc.stdout.decode().strip() == f"{test_wav}: {whole}"
    proc = _ese("transcribe", str(tiny_models["pt"]), str(test_wav), "--engine", "ese-cpu")
    assert proc.returncode == 0 and proc.stdout.decode().startswith(f"{test_wav}: ")


@pytest.mark.parametrize("key", ["qnpz", "ese"])
def test_stream_prints_the_same_phones_and_the_rtf_on_stderr(tiny_models, test_wav, whole, key, tmp_path):
    out = tmp_path / "s.json"
    proc = _ese("transcribe", str(tiny_models[key]), str(test_wav), "--stream", "--chunk-ms", "30",
                "--json", str(out))
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode() == whole + "\n"  # phones only
    assert proc.stderr.decode().startswith("real-time factor ")
    assert json.loads(out.read_text()) == {str(test_wav): whole}


def test_stream_reads_raw_pcm_and_wav_from_standard_input(tiny_models, test_wav, whole):
    samples, _ = sf.read(test_wav, dtype="int16")
    raw = _ese("transcribe", str(tiny_models["qnpz"]), "-", "--stream", stdin=samples.astype("<i2").tobytes())
    assert raw.returncode == 0, raw.stderr.decode()
    assert raw.stdout.decode() == whole + "\n"
    wav = _ese("transcribe", str(tiny_models["qnpz"]), "-", "--stream", stdin=Path(test_wav).read_bytes())
    assert wav.stdout.decode() == whole + "\n"


def test_stream_reads_the_corpus_sphere_files(tiny_models, tone_corpus):
    sph = sorted((tone_corpus / "TEST").rglob("*.WAV"))[0]
    a = _ese("transcribe", str(tiny_models["qnpz"]), str(sph), "--stream")
    b = _ese("transcribe", str(tiny_models["qnpz"]), str(sph))
    assert a.returncode == 0, a.stderr.decode()
    assert b.stdout.decode().split(": ", 1)[1] == a.stdout.decode()


def test_eval_scores_every_kind_alike(tiny_models, tone_corpus, tmp_path):
    per = {}
    for key, extra in (("qnpz", []), ("ese", []), ("pt", ["--qmodel", str(tiny_models["qnpz"])])):
        out = tmp_path / f"{key}.json"
        proc = _ese("eval", str(tiny_models[key]), "--corpus", str(tone_corpus), "--split", "test", "--quiet",
                    "--json", str(out), *extra)
        assert proc.returncode == 0, proc.stderr.decode()
        rep = json.loads(out.read_text())
        assert rep["engine"] == "ese-cpu"
        per[key] = rep["per"]["test"]
    assert per["qnpz"] == per["ese"] == per["pt"]


def test_an_engine_that_cannot_run_the_file_is_one_line(tiny_models, test_wav):
    line = _one_line(_ese("transcribe", str(tiny_models["qnpz"]), str(test_wav), "--engine", "torch"))
    assert line == (f"error: {tiny_models['qnpz']} is a fixed-point model (.qnpz): the torch engine cannot run "
                    "it (it runs on ese-cpu); drop --engine or use ese-cpu")


@pytest.mark.parametrize("what, stream", [("truncated", False), ("foreign", False), ("text", False), ("old", False),
                                          ("truncated", True), ("old", True)])
def test_bad_model_files_are_one_line(tiny_models, test_wav, tmp_path, what, stream):
    bad = tmp_path / "model.qnpz"
    data = tiny_models["qnpz"].read_bytes()
    if what == "truncated":
        bad.write_bytes(data[:len(data) // 3])
    elif what == "foreign":
        bad.write_bytes(test_wav.read_bytes())  # audio handed over as the model
    elif what == "text":
        bad.write_text("[model]\nhidden = 3\n")
    else:
        strip_qmodel(tiny_models["qnpz"], bad)
    line = _one_line(_ese("transcribe", str(bad), str(test_wav), *(["--stream"] if stream else [])))
    assert str(bad) in line
    expect = {"truncated": "truncated or damaged", "foreign": "it is a RIFF file (audio?)",
              "text": "it is a text file", "old": "lacks the feature configuration"}[what]
    assert expect in line


@pytest.mark.parametrize("content, expect", [
    (b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x02\x00\x80\x3e\x00\x00\x00\xfa\x00\x00\x04\x00\x10\x00data\x00\x00\x00\x00",
     "2 channels, expected mono"),
    (b"\x89PNG\r\n\x1a\n", "is a PNG image, not audio"),
    (b"\x01\x02\x03", "ends in half a sample (3 bytes of 16-bit PCM)"),
])
def test_bad_streams_are_one_line(tiny_models, content, expect):
    line = _one_line(_ese("transcribe", str(tiny_models["qnpz"]), "-", "--stream", stdin=content))
    assert line == f"error: standard input: {expect}"


def test_a_truncated_wav_stream_is_refused_after_its_phones(tiny_models, test_wav):
    data = test_wav.read_bytes()
    proc = _ese("transcribe", str(tiny_models["qnpz"]), "-", "--stream", stdin=data[:len(data) // 2])
    line = _one_line(proc)
    assert line.startswith("error: standard input: truncated audio (its header says ")


def test_standard_input_needs_stream(tiny_models):
    assert _one_line(_ese("transcribe", str(tiny_models["qnpz"]), "-")) == \
        "error: standard input (-) is read with --stream only"


def test_complete_makes_an_old_file_transcribe(tiny_models, test_wav, whole, tmp_path):
    old = strip_qmodel(tiny_models["qnpz"], tmp_path / "old.qnpz")
    proc = _ese("complete", str(old), "--from", str(tiny_models["pt"]), "--out", str(tmp_path / "new.qnpz"))
    assert proc.returncode == 0, proc.stderr.decode()
    assert "weights bit-identical" in proc.stdout.decode()
    proc = _ese("transcribe", str(tmp_path / "new.qnpz"), str(test_wav))
    assert proc.stdout.decode().strip().endswith(whole)
