import json
import struct

import numpy as np
import pytest
import soundfile as sf

from corpus_factory import make_tone_corpus, make_utterance, write_utterance
from ese.data.timit import list_utterances, read_audio, read_phn, split_records
from ese.errors import AudioError, CorpusError


def test_reader_finds_every_split(tone_corpus):
    assert len(split_records(tone_corpus, "train")) == 24
    dev, test = split_records(tone_corpus, "dev"), split_records(tone_corpus, "test")
    assert len(dev) == len(test) == 6
    assert not {r.speaker for r in dev} & {r.speaker for r in test}
    rec = dev[0]
    assert rec.utt_id.startswith(rec.speaker + "_") and rec.wav.suffix == ".WAV"


def test_lower_case_layout_and_riff_audio(tmp_path):
    rng = np.random.default_rng(0)
    audio, segs = make_utterance(rng, 1.0)
    write_utterance(tmp_path / "train" / "dr3" / "fabc0", "si12", audio, segs, fmt="WAV", upper=False)
    recs = list_utterances(tmp_path, "TRAIN")
    assert [r.utt_id for r in recs] == ["FABC0_SI12"]
    assert read_audio(recs[0].wav, 16000).shape == audio.shape


def write_sphere_by_hand(path, samples: np.ndarray, rate: int = 16000) -> None:
    """A NIST SPHERE file as TIMIT ships it: 1024-byte ASCII header, then little-endian PCM."""
    fields = [f"sample_count -i {len(samples)}", f"sample_rate -i {rate}", "channel_count -i 1",
              "sample_n_bytes -i 2", "sample_byte_format -s2 01", "sample_coding -s3 pcm", "end_head"]
    header = ("NIST_1A\n   1024\n" + "\n".join(fields) + "\n").encode("ascii")
    path.write_bytes(header.ljust(1024, b" ") + struct.pack(f"<{len(samples)}h", *samples))


def test_hand_made_sphere_file_is_read_exactly(tmp_path):
    samples = (np.arange(3000) % 200 - 100).astype(np.int16) * 50
    path = tmp_path / "SX1.WAV"
    write_sphere_by_hand(path, samples)
    got = read_audio(path, 16000)
    np.testing.assert_array_equal(np.round(got * 32768).astype(np.int16), samples)


def test_real_timit_gets_the_standard_split(tmp_path):
    rng = np.random.default_rng(0)
    for top, spk, utts in [("TRAIN", "FAEM0", ["SA1", "SX1"]), ("TEST", "MDAB0", ["SA1", "SI2", "SX3"]),
                           ("TEST", "FAKS0", ["SX4"]), ("TEST", "MZZZ0", ["SX5"])]:
        for u in utts:
            audio, segs = make_utterance(rng, 1.0, n_phones=2)
            write_utterance(tmp_path / top / "DR1" / spk, u, audio, segs)
    assert [r.utt_id for r in split_records(tmp_path, "train")] == ["FAEM0_SX1"]  # SA excluded
    assert [r.utt_id for r in split_records(tmp_path, "test")] == ["MDAB0_SI2", "MDAB0_SX3"]  # core test
    assert [r.utt_id for r in split_records(tmp_path, "dev")] == ["FAKS0_SX4"]  # dev list


def test_wrong_sample_rate_says_found_and_expected(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(str(path), np.zeros(800, np.float32), 8000)
    with pytest.raises(AudioError, match=r"sample rate 8000 Hz, expected 16000 Hz"):
        read_audio(path, 16000)


def test_corrupt_and_truncated_audio(tmp_path):
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF\x00\x00garbage" * 10)
    with pytest.raises(AudioError, match="junk.wav: cannot read audio"):
        read_audio(junk, 16000)
    good = tmp_path / "good.WAV"
    write_sphere_by_hand(good, np.ones(4000, np.int16))
    cut = tmp_path / "cut.WAV"
    cut.write_bytes(good.read_bytes()[:1024 + 2000])
    with pytest.raises(AudioError, match="cut.WAV"):
        read_audio(cut, 16000)


def test_stereo_is_rejected(tmp_path):
    path = tmp_path / "st.wav"
    sf.write(str(path), np.zeros((100, 2), np.float32), 16000)
    with pytest.raises(AudioError, match="2 channels, expected mono"):
        read_audio(path, 16000)


@pytest.mark.parametrize("text, message", [
    ("0 100 h#\n50 200 aa\n", r"x.PHN:2: segment starting at 50 overlaps"),
    ("0 100 h#\n100 5000 aa\n", r"x.PHN:2: segment ends at sample 5000, past the audio \(1000 samples\)"),
    ("0 100 h#\n100 200 zz\n", r"x.PHN:2: phone 'zz' is not one of the 61 TIMIT phones"),
    ("0 100\n", r"x.PHN:1: expected 'start end phone'"),
    ("0 1e2 h#\n", r"x.PHN:1: sample positions must be integers"),
    ("100 100 h#\n", r"x.PHN:1: segment \[100, 100\) is empty"),
    ("\n", r"x.PHN: no phone segments"),
])
def test_bad_phn_files_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "x.PHN"
    path.write_text(text)
    with pytest.raises(CorpusError, match=message):
        read_phn(path, num_samples=1000)


def test_empty_corpus_and_missing_split(tmp_path):
    with pytest.raises(CorpusError, match="is not a directory"):
        split_records(tmp_path / "nope", "train")
    (tmp_path / "TRAIN").mkdir()
    with pytest.raises(CorpusError, match="has no TEST directory"):
        split_records(tmp_path, "dev")
    with pytest.raises(CorpusError, match="the train split is empty"):
        split_records(tmp_path, "train")
    with pytest.raises(CorpusError, match="unknown split 'eval'"):
        split_records(tmp_path, "eval")


def test_audio_without_phn_is_reported(tmp_path):
    spk = tmp_path / "TRAIN" / "DR1" / "MABC0"
    spk.mkdir(parents=True)
    sf.write(str(spk / "SX1.WAV"), np.zeros(800, np.float32), 16000, format="NIST", subtype="PCM_16")
    with pytest.raises(CorpusError, match="no .PHN file"):
        list_utterances(tmp_path, "TRAIN")


def test_broken_splits_file(tmp_path):
    make_tone_corpus(tmp_path, speakers=1, utts=1)
    (tmp_path / "splits.json").write_text(json.dumps({"train": []}))
    with pytest.raises(CorpusError, match="not a valid splits file"):
        split_records(tmp_path, "train")
