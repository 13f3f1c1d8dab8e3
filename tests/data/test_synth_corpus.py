"""ese.data.synth end to end with festival and espeak-ng (marker ``synth``)."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ese.config import SynthConfig
from ese.data.phones import PHONES_61
from ese.data.synth import align, corpus, espeak, festival, phonemap, synthesize_corpus, text

pytestmark = pytest.mark.synth

SILENCES = {"h#", "pau", "epi"}
TINY = SynthConfig(hours=0.006, espeak_variants=4, utterances_per_speaker=3, jobs=2)


def _tools_or_skip():
    try:
        corpus.check_tools(TINY)
    except Exception as exc:  # noqa: BLE001 - report why and skip
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    _tools_or_skip()
    root = tmp_path_factory.mktemp("synth") / "corpus"
    summary = synthesize_corpus(root, TINY, progress=False)
    return root, summary


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "synth_summary.json"}


def test_every_emitted_phone_is_mapped():
    _tools_or_skip()
    sentences = [text.sentence_text(s) for s in text.sentence_pool(60, seed=3)]
    unmapped: Counter = Counter()
    for r in festival.synthesize("kal_diphone", sentences[:8]):
        for name, _ in r.phones:
            if phonemap.map_phone(phonemap.FESTIVAL_RADIO, name) is None:
                unmapped["festival:" + name] += 1
    engine = espeak.Espeak()  # noqa: one per process is the rule; this test process has no other
    for accent, table in phonemap.ESPEAK_TABLES.items():
        engine.set_voice(f"{accent}+m3")
        for sentence in sentences:
            for name, _ in engine.synth(sentence).phones:
                if phonemap.map_phone(table, name) is None:
                    unmapped[f"{accent}:{name}"] += 1
    assert not unmapped, f"phones without a TIMIT mapping: {dict(unmapped)}"


def test_layout_and_annotations(tiny):
    root, summary = tiny
    splits = json.loads((root / "splits.json").read_text())
    assert splits["version"] == 1 and set(splits) >= {"train", "dev", "test", "generator"}
    assert all(splits[s] for s in ("train", "dev", "test"))
    assert summary["utterances"]["train"] > 0 and summary["unmapped_phones"] == {}
    assert json.loads((root / "synth_summary.json").read_text())["utterances"] == summary["utterances"]
    wavs = sorted(root.rglob("*.WAV"))
    assert len(wavs) == sum(summary["utterances"].values())
    for wav in wavs:
        split_dir, dr, spk = wav.parts[-4:-1]
        split = next(s for s in ("train", "dev", "test", "proxy") if spk in splits.get(s, ()))
        assert split_dir == ("TRAIN" if split == "train" else "TEST")
        assert dr.startswith("DR") and 1 <= int(dr[2:]) <= 8
        assert spk[0] in "MF" and len(spk) == 5
        info = sf.info(wav)
        assert (info.samplerate, info.channels, info.format, info.subtype) == (16000, 1, "NIST", "PCM_16")
        audio, _ = sf.read(wav, dtype="int16")
        n = len(audio)
        assert np.abs(audio).max() > 1000
        phn = [line.split() for line in wav.with_suffix(".PHN").read_text().splitlines()]
        assert phn[0][2] == "h#" and phn[-1][2] == "h#"
        prev = 0
        for start, end, phone in phn:
            start, end = int(start), int(end)
            assert phone in PHONES_61 and start == prev and end > start, (wav, start, end, phone)
            if phone not in SILENCES:
                assert 0.005 <= (end - start) / 16000 <= 0.5, (wav, start, end, phone)
            prev = end
        assert prev == n
        bounds = {int(s) for s, _, _ in phn} | {n}
        txt = wav.with_suffix(".TXT").read_text().split(maxsplit=2)
        assert txt[:2] == ["0", str(n)]
        words = [line.split() for line in wav.with_suffix(".WRD").read_text().splitlines()]
        assert [w for _, _, w in words] == [w.strip(".").lower() for w in txt[2].split()]
        for start, end, _ in words:
            assert int(start) in bounds and int(end) in bounds and 0 < int(start) < int(end) < n


def test_test_voices_absent_from_train(tiny):
    root, _ = tiny
    splits = json.loads((root / "splits.json").read_text())
    family = {spk: info["family"] for spk, info in splits["speakers"].items()}
    train = {family[s] for s in splits["train"]}
    assert not train & {family[s] for s in splits["test"]}
    assert not train & {family[s] for s in splits["dev"]}
    proxy = {family[s] for s in splits["proxy"]}
    assert proxy and not train & proxy
    assert {splits["speakers"][s]["engine"] for s in splits["proxy"]} == {"flite"}
    assert "flite" not in {splits["speakers"][s]["engine"] for s in splits["train"]}


def test_deterministic_and_resumable(tiny, tmp_path):
    root, _ = tiny
    again = tmp_path / "again"
    synthesize_corpus(again, TINY, progress=False)
    before = _files(root)
    assert _files(again) == before

    victim = sorted(again.rglob("*.WAV"))[len(before) // 8]
    victim.unlink()
    summary = synthesize_corpus(again, TINY, progress=False)
    assert summary["written"] == 1 and victim.exists()
    assert _files(again) == before


def test_missing_tool_message(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(corpus.ToolMissingError, match="apt-get install -y festival festvox-kallpc16k "
                       "festvox-kdlpc16k festvox-us-slt-hts espeak-ng libespeak-ng1 flite libflite1"):
        corpus.check_tools()


def test_espeak_closures_come_from_silence():
    audio = np.concatenate([np.ones(400), np.zeros(300), np.ones(400)]).astype(np.float32) * 0.5
    segs = [("ae", 0, 700), ("t", 700, 1100)]
    out = align.split_espeak_closures(segs, audio, 22050)
    assert [p for p, _, _ in out] == ["ae", "tcl", "t"]
    assert out[1][2] == 700 and 400 <= out[1][1] <= 450
