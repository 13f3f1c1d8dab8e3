"""ese.data.synth planning, tables and validation: no synthesiser needed."""

from __future__ import annotations

import dataclasses

import pytest

from ese.config import SynthConfig
from ese.data.phones import PHONES_61
from ese.data.synth import corpus, phonemap, text
from ese.errors import ConfigError, EseError


def test_phone_tables_map_into_the_61_set():
    for table in (phonemap.FESTIVAL_RADIO, *phonemap.ESPEAK_TABLES.values()):
        for native, timit in table.items():
            assert timit and set(timit) <= set(PHONES_61), (native, timit)


def test_unknown_phone_fallback():
    table = phonemap.ESPEAK_EN_US
    assert phonemap.map_phone(table, "I#") == ("ix",)
    assert phonemap.map_phone(table, "E3") == ("eh",)  # modifier stripped
    assert phonemap.map_phone(table, ";") == ()
    assert phonemap.map_phone(table, "Q!") is None


def test_sentence_pool_is_distinct_and_sized():
    pool = text.sentence_pool(3000, seed=5)
    assert len(set(pool)) == 3000
    assert all(text.MIN_WORDS <= len(s) <= text.MAX_WORDS for s in pool)
    assert all(w.isalpha() and w.islower() for s in pool for w in s)
    assert pool == text.sentence_pool(3000, seed=5)
    assert text.sentence_text(("i", "saw", "anna")) == "I saw Anna."


@pytest.mark.parametrize("hours", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_hours_is_a_clear_error(hours):
    with pytest.raises(ConfigError, match=r"synth.hours must be a positive number of hours, not"):
        corpus.plan(SynthConfig(hours=hours))


def test_bad_fractions_and_voices():
    with pytest.raises(EseError, match=r"synth.dev_fraction \+ test_fraction must be below 1"):
        corpus.plan(SynthConfig(dev_fraction=0.5, test_fraction=0.5))
    with pytest.raises(ConfigError, match=r"synth.festival_voices must be drawn from"):
        corpus.plan(SynthConfig(festival_voices=("nope",)))
    with pytest.raises(ConfigError, match=r"not enough base voices for a"):
        corpus.plan(SynthConfig(festival_voices=("kal_diphone",), espeak_variants=0))


@pytest.fixture(scope="module")
def default_plan():
    return corpus.plan(SynthConfig(hours=2.0))


def test_plan_splits_are_disjoint(default_plan):
    by_split = {s: [spk for spk in default_plan if spk.split == s] for s in corpus.SPLITS}
    assert all(by_split.values())
    ids = [spk.id for spk in default_plan]
    assert len(ids) == len(set(ids))
    assert all(len(i) == 5 and i[0] in "MF" and i.isalnum() and i.isupper() for i in ids)
    families = {s: {spk.base.family for spk in v} for s, v in by_split.items()}
    sentences = {s: {w for spk in v for _, w in spk.utterances} for s, v in by_split.items()}
    for a, b in (("train", "dev"), ("train", "test"), ("dev", "test")):
        assert not families[a] & families[b], (a, b)
        assert not sentences[a] & sentences[b], (a, b)
    # test base voices never appear in training, in any variation or accent
    train_voices = {spk.base.name for spk in by_split["train"]}
    assert not train_voices & {spk.base.name for spk in by_split["test"]}
    assert sum(len(spk.utterances) for spk in default_plan) > 2000  # "thousands" of sentences
    for spk in default_plan:
        utt_ids = [u for u, _ in spk.utterances]
        assert len(set(utt_ids)) == len(utt_ids)
        assert all(u.startswith("SX") for u in utt_ids)


def test_plan_is_deterministic_and_seeded():
    cfg = SynthConfig(hours=0.1)
    assert corpus.plan(cfg) == corpus.plan(cfg)
    assert corpus.plan(cfg) != corpus.plan(dataclasses.replace(cfg, seed=1))
