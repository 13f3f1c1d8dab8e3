"""Plan and write the synthetic TIMIT-layout corpus (docs/synth-corpus.md).

Plan (deterministic in the config): base voices -> held-out families for dev and test -> speakers
(base voice + ``Variation``) -> each speaker's sentences. Work: one task per speaker, each in a
fresh worker process (espeak-ng's output depends on the process's synthesis history), writing
.PHN, .WRD, .TXT and then .WAV atomically; an utterance counts as done only when all four exist.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os
import time
from collections import Counter
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from ese.atomic import atomic_open, atomic_path, write_json
from ese.config import SynthConfig
from ese.data.phones import PHONES_61
from ese.data.synth import align, channel, espeak, festival, flite, perturb, phonemap, text
from ese.errors import ConfigError, CorpusError, ToolMissingError

APT_LINE = ("apt-get install -y festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts "
            "espeak-ng libespeak-ng1 flite libflite1")
SPLITS = ("train", "dev", "test")
ALL_SPLITS = (*SPLITS, "proxy")  # proxy: the held-out synthesiser, reverberated and noisy
SPLIT_DIR = {"train": "TRAIN", "dev": "TEST", "test": "TEST", "proxy": "TEST"}
ENGINES = ("festival", "espeak", "flite")
TALKER_BANK_SIZE = 32  # utterances of training voices that "talkers" babble is cut from
EXTENSIONS = (".PHN", ".WRD", ".TXT", ".WAV")  # written in this order: .WAV last marks completion
EST_UTTERANCE_S = 2.4  # mean duration incl. padding, measured on the default config
BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

FESTIVAL_CODES = {"kal_diphone": "KA", "ked_diphone": "KD", "cmu_us_slt_arctic_hts": "SL"}
FLITE_CODES = {"cmu_us_awb": "FA", "cmu_us_rms": "FR", "cmu_us_slt": "FS", "cmu_us_kal16": "FK"}
ESPEAK_CODE_LETTERS = {"en-us": "ABCDEGHJLM", "en": "NPQRTUVWXY"}
# espeak-ng variants that sound like a person (no robots, whisper, croak, heavy effects)
ESPEAK_VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "Alex", "Alicia", "Andrea", "Andy", "Annie", "Denis", "Gene", "Hugo", "Jacky", "Lee",
    "Michael", "Mike", "adam", "anika", "aunty", "belinda", "benjamin", "boris", "david", "ed",
    "edward", "grandma", "grandpa", "iven", "iven2", "iven3", "klatt", "klatt2", "klatt3", "linda",
    "max", "michel", "paul", "quincy", "rob", "robert", "steph", "steph2", "travis", "victor", "zac",
)
ESPEAK_DATA_DIRS = (Path("/usr/lib/x86_64-linux-gnu/espeak-ng-data"), Path("/usr/share/espeak-ng-data"),
                    Path("/usr/local/share/espeak-ng-data"))


@dataclass(frozen=True)
class BaseVoice:
    """A synthesiser voice; ``family`` is the unit held out of training (both accents of a variant)."""

    engine: str  # festival | espeak | flite
    name: str  # festival or flite voice, or espeak voice name such as "en-us+m3"
    family: str
    sex: str  # M | F
    code: str  # two characters of the speaker id
    dr: int  # dialect-region directory number 1..8


@dataclass(frozen=True)
class Speaker:
    id: str
    split: str
    base: BaseVoice
    variation: perturb.Variation
    utterances: tuple[tuple[str, tuple[str, ...]], ...]  # (utterance id, words)
    seed: tuple[int, ...]  # entropy for the per-utterance random streams


# ---------------------------------------------------------------------------------------------
# tools and validation


def check_tools(cfg: SynthConfig | None = None) -> None:
    """Raise ToolMissingError when festival, a configured festival voice or libespeak-ng is missing."""
    cfg = cfg or SynthConfig()
    missing = []
    if festival.festival_binary() is None:
        missing.append("festival")
    else:
        missing += [f"festival voice {v}" for v in cfg.festival_voices if not festival.voice_installed(v)]
    if cfg.espeak_variants > 0 and espeak.find_library() is None:
        missing.append("libespeak-ng")
    if cfg.flite_voices:
        if not flite.available():
            missing.append("libflite")
        else:
            missing += [f"flite voice {v}" for v in cfg.flite_voices if not flite.voice_installed(v)]
    if missing:
        raise ToolMissingError(f"{', '.join(missing)} not found; install with: {APT_LINE}")


def _validate(cfg: SynthConfig) -> None:
    def bad(what: str, value: object, expected: str) -> ConfigError:
        return ConfigError(f"synth.{what} must be {expected}, not {value!r}")

    if not (isinstance(cfg.hours, (int, float)) and math.isfinite(cfg.hours) and cfg.hours > 0):
        raise bad("hours", cfg.hours, "a positive number of hours")
    if not isinstance(cfg.seed, int) or cfg.seed < 0:
        raise bad("seed", cfg.seed, "a non-negative integer")
    if not isinstance(cfg.jobs, int) or cfg.jobs < 0:
        raise bad("jobs", cfg.jobs, "a non-negative integer (0 = all cores)")
    if cfg.espeak_variants < 0:
        raise bad("espeak_variants", cfg.espeak_variants, ">= 0")
    if cfg.utterances_per_speaker < 1:
        raise bad("utterances_per_speaker", cfg.utterances_per_speaker, ">= 1")
    for name in ("dev_fraction", "test_fraction", "dev_voice_fraction", "test_voice_fraction"):
        value = getattr(cfg, name)
        if not 0 < value < 1:
            raise bad(name, value, "between 0 and 1 (exclusive)")
    if cfg.dev_fraction + cfg.test_fraction >= 1:
        raise bad("dev_fraction + test_fraction", cfg.dev_fraction + cfg.test_fraction, "below 1")
    for name in ("pitch_range", "rate_range", "vtlp_range"):
        lo_hi = getattr(cfg, name)
        if len(lo_hi) != 2 or not 0 < lo_hi[0] <= lo_hi[1]:
            raise bad(name, lo_hi, "[low, high] with 0 < low <= high")
    if not cfg.snr_db:
        raise bad("snr_db", cfg.snr_db, "a non-empty list of SNRs in dB")
    for kind in cfg.noise_types:
        if kind not in perturb.NOISE_TYPES:
            raise bad("noise_types", cfg.noise_types, f"a list drawn from {list(perturb.NOISE_TYPES)}")
    for voice in cfg.flite_voices:
        if voice not in FLITE_CODES:
            raise bad("flite_voices", cfg.flite_voices, f"drawn from {sorted(FLITE_CODES)}")
    if cfg.proxy_engine not in ("", *ENGINES):
        raise bad("proxy_engine", cfg.proxy_engine, f"one of {['', *ENGINES]}")
    for split in cfg.augment_splits:
        if split not in SPLITS:
            raise bad("augment_splits", cfg.augment_splits, f"drawn from {list(SPLITS)}")
    for name in ("room_prob", "channel_prob"):
        if not 0 <= getattr(cfg, name) <= 1:
            raise bad(name, getattr(cfg, name), "between 0 and 1")
    if not 0 <= cfg.proxy_fraction < 1:
        raise bad("proxy_fraction", cfg.proxy_fraction, "between 0 and 1")
    for name in ("rt60_range", "hp_range", "lp_range", "talkers_range"):
        lo_hi = getattr(cfg, name)
        if len(lo_hi) != 2 or not 0 < lo_hi[0] <= lo_hi[1]:
            raise bad(name, lo_hi, "[low, high] with 0 < low <= high")
    if len(cfg.drr_db_range) != 2 or cfg.drr_db_range[0] > cfg.drr_db_range[1]:
        raise bad("drr_db_range", cfg.drr_db_range, "[low, high] with low <= high")
    if cfg.lp_range[1] >= perturb.SAMPLE_RATE / 2:
        raise bad("lp_range", cfg.lp_range, f"below {perturb.SAMPLE_RATE // 2} Hz")
    for codec in cfg.codecs:
        if codec not in channel.CODECS:
            raise bad("codecs", cfg.codecs, f"a list drawn from {list(channel.CODECS)}")
    if not cfg.codecs:
        raise bad("codecs", cfg.codecs, "a non-empty list")
    for name in ("augment_snr_db", "proxy_snr_db"):
        if not getattr(cfg, name):
            raise bad(name, getattr(cfg, name), "a non-empty list of SNRs in dB")
    for kind in cfg.augment_noise_types:
        if kind not in perturb.NOISE_TYPES:
            raise bad("augment_noise_types", cfg.augment_noise_types,
                      f"a list drawn from {list(perturb.NOISE_TYPES)}")
    if not cfg.augment_noise_types:
        raise bad("augment_noise_types", cfg.augment_noise_types, "a non-empty list")
    if "talkers" in cfg.noise_types:
        raise bad("noise_types", cfg.noise_types, "without talkers (augment_noise_types may have it)")
    for voice in cfg.festival_voices:
        if voice not in FESTIVAL_CODES:
            raise bad("festival_voices", cfg.festival_voices, f"drawn from {sorted(FESTIVAL_CODES)}")
    for accent in cfg.espeak_accents:
        if accent not in phonemap.ESPEAK_TABLES:
            raise bad("espeak_accents", cfg.espeak_accents, f"drawn from {sorted(phonemap.ESPEAK_TABLES)}")
    if cfg.espeak_variants > 0 and not cfg.espeak_accents:
        raise bad("espeak_accents", cfg.espeak_accents, "non-empty when espeak_variants > 0")


# ---------------------------------------------------------------------------------------------
# planning


def _installed_variants() -> list[str]:
    for root in ESPEAK_DATA_DIRS:
        vdir = root / "voices" / "!v"
        if vdir.is_dir():
            return [v for v in ESPEAK_VARIANTS if (vdir / v).is_file()]
    return list(ESPEAK_VARIANTS)


def _variant_sex(variant: str) -> str:
    for root in ESPEAK_DATA_DIRS:
        path = root / "voices" / "!v" / variant
        if path.is_file():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                fields = line.split()
                if len(fields) >= 2 and fields[0].lower() == "gender":
                    return "F" if fields[1].lower().startswith("f") else "M"
    return "F" if variant.startswith("f") else "M"


def base_voices(cfg: SynthConfig) -> list[BaseVoice]:
    """Every base voice of the configuration, in a fixed order."""
    voices = [BaseVoice("festival", v, v, festival.SEX[v], FESTIVAL_CODES[v], 0)
              for v in cfg.festival_voices]
    installed = _installed_variants()
    rng = np.random.default_rng([cfg.seed, 17])
    if cfg.espeak_variants > len(installed):
        raise ConfigError(f"synth.espeak_variants must be at most {len(installed)} (the usable "
                          f"installed variants), not {cfg.espeak_variants!r}")
    chosen = sorted(rng.choice(len(installed), size=cfg.espeak_variants, replace=False).tolist())
    for accent in cfg.espeak_accents:
        letters = ESPEAK_CODE_LETTERS[accent]
        for idx in chosen:
            variant = installed[idx]
            code = letters[idx // 10] + str(idx % 10)
            voices.append(BaseVoice("espeak", f"{accent}+{variant}", variant, _variant_sex(variant),
                                    code, 0))
    voices += [BaseVoice("flite", v, v, flite.SEX[v], FLITE_CODES[v], 0) for v in cfg.flite_voices]
    return [dataclasses.replace(v, dr=1 + i % 8) for i, v in enumerate(voices)]


def hold_out(cfg: SynthConfig, voices: list[BaseVoice]) -> dict[str, list[str]]:
    """Families per split: per engine, ``test_voice_fraction`` / ``dev_voice_fraction`` held out."""
    rng = np.random.default_rng([cfg.seed, 23])
    split: dict[str, list[str]] = {s: [] for s in ALL_SPLITS}
    for engine in ENGINES:
        families = sorted({v.family for v in voices if v.engine == engine})
        if engine == cfg.proxy_engine:  # the whole synthesiser is the proxy
            split["proxy"] += families
            continue
        families = [families[i] for i in rng.permutation(len(families))]
        if len(families) < 2:
            split["train"] += families
            continue
        n_test = min(len(families) - 1, max(1, round(cfg.test_voice_fraction * len(families))))
        n_dev = min(len(families) - 1 - n_test, round(cfg.dev_voice_fraction * len(families)))
        split["test"] += families[:n_test]
        split["dev"] += families[n_test:n_test + n_dev]
        split["train"] += families[n_test + n_dev:]
    if not split["dev"] and len(split["train"]) >= 2:
        split["dev"].append(split["train"].pop())
    for name in SPLITS:
        if not split[name]:
            raise ConfigError(f"not enough base voices for a {name} split: got {len(voices)} "
                              "voices; use more festival_voices or espeak_variants")
    return split


def _speaker_id(sex: str, code: str, index: int) -> str:
    if index >= 36 * 36:
        raise ConfigError(f"more than {36 * 36} speakers per base voice; lower synth.hours")
    return sex + code + BASE36[index // 36] + BASE36[index % 36]


def plan(cfg: SynthConfig) -> list[Speaker]:
    """All speakers with their variations and sentences (deterministic in ``cfg``)."""
    _validate(cfg)
    voices = base_voices(cfg)
    families = hold_out(cfg, voices)
    shares = {"train": 1.0 - cfg.dev_fraction - cfg.test_fraction, "dev": cfg.dev_fraction,
              "test": cfg.test_fraction}
    per = cfg.utterances_per_speaker
    n_utts = {s: max(1, round(cfg.hours * 3600 * shares[s] / EST_UTTERANCE_S)) for s in SPLITS}
    total = sum(n_utts.values())
    if families["proxy"] and cfg.proxy_fraction > 0:
        n_utts["proxy"] = max(1, round(cfg.hours * 3600 * cfg.proxy_fraction / EST_UTTERANCE_S))

    pool = text.sentence_pool(max(2000, total), cfg.seed)
    sizes = {s: max(per, round(len(pool) * shares[s])) for s in ("dev", "test")}
    sentences = {"dev": list(range(sizes["dev"])),
                 "test": list(range(sizes["dev"], sizes["dev"] + sizes["test"])),
                 "train": list(range(sizes["dev"] + sizes["test"], len(pool)))}
    sentences["proxy"] = sentences["test"]  # unseen sentences, as the test split's

    speakers: list[Speaker] = []
    counters: Counter = Counter()
    for split in (s for s in ALL_SPLITS if s in n_utts):
        rng = np.random.default_rng([cfg.seed, 31, ALL_SPLITS.index(split)])
        split_voices = [v for v in voices if v.family in families[split]]
        split_voices = [split_voices[i] for i in rng.permutation(len(split_voices))]
        order = [sentences[split][i] for i in rng.permutation(len(sentences[split]))]
        cursor = 0
        remaining = n_utts[split]
        k = 0
        while remaining > 0:
            base = split_voices[k % len(split_voices)]
            count = min(per, remaining)
            ids = [order[(cursor + j) % len(order)] for j in range(count)]
            cursor += count
            remaining -= count
            index = counters[base.name]
            counters[base.name] += 1
            seed = (cfg.seed, voices.index(base), index)
            speakers.append(Speaker(
                id=_speaker_id(base.sex, base.code, index), split=split, base=base,
                variation=_variation(cfg, np.random.default_rng([*seed, 1]), split),
                utterances=tuple((f"SX{i}", pool[i]) for i in ids), seed=seed))
            k += 1
    return speakers


def _variation(cfg: SynthConfig, rng: np.random.Generator, split: str = "train") -> perturb.Variation:
    var = perturb.Variation(
        pitch=round(float(rng.uniform(*cfg.pitch_range)), 4),
        rate=round(float(rng.uniform(*cfg.rate_range)), 4),
        speed=round(float(rng.uniform(*cfg.vtlp_range)), 4),
        snr_db=float(cfg.snr_db[int(rng.integers(len(cfg.snr_db)))]),
        noise=cfg.noise_types[int(rng.integers(len(cfg.noise_types)))],
        gain_db=round(float(rng.uniform(1.0, 9.0)), 3),
    )  # the clean recipe; the draws below come after, so a clean speaker's draws never change
    proxy = split == "proxy"
    if not proxy and split not in cfg.augment_splits:
        return var
    room = proxy or rng.random() < cfg.room_prob
    chan = proxy or rng.random() < cfg.channel_prob
    changes: dict = {
        "noise": cfg.augment_noise_types[int(rng.integers(len(cfg.augment_noise_types)))],
        "snr_choices": tuple(float(v) for v in (cfg.proxy_snr_db if proxy else cfg.augment_snr_db)),
        "talkers": int(rng.integers(cfg.talkers_range[0], cfg.talkers_range[1] + 1)),
    }
    if room:
        changes.update(rt60=round(float(rng.uniform(*cfg.rt60_range)), 3),
                       drr_db=round(float(rng.uniform(*cfg.drr_db_range)), 2),
                       room_seed=int(rng.integers(2**31)))
    if chan:
        peaks = int(rng.integers(0, 4))
        changes.update(
            hp_hz=round(float(rng.uniform(*cfg.hp_range)), 1),
            lp_hz=round(float(rng.uniform(*cfg.lp_range)), 1),
            eq=tuple((round(float(np.exp(rng.uniform(np.log(200), np.log(6000)))), 1),
                      round(float(rng.uniform(-cfg.eq_gain_db, cfg.eq_gain_db)), 2),
                      round(float(rng.uniform(0.7, 3.0)), 2)) for _ in range(peaks)),
            codec=cfg.codecs[int(rng.integers(len(cfg.codecs)))])
    return dataclasses.replace(var, **changes)


def speaker_dir(root: Path, spk: Speaker) -> Path:
    return root / SPLIT_DIR[spk.split] / f"DR{spk.base.dr}" / spk.id


# ---------------------------------------------------------------------------------------------
# work (runs in worker processes)


def _complete(stem: Path) -> bool:
    return all(stem.with_suffix(ext).exists() for ext in EXTENSIONS)


def _samples_of(stem: Path) -> int:
    return int(stem.with_suffix(".TXT").read_text(encoding="utf-8").split()[1])


def _render(spk: Speaker) -> tuple[list[tuple[np.ndarray, int, list, list]], Counter]:
    """Synthesise every sentence of ``spk``: (audio, rate, TIMIT segments, words) at native rate."""
    texts = [text.sentence_text(words) for _, words in spk.utterances]
    var = spk.variation
    out = []
    unmapped: Counter = Counter()
    if spk.base.engine in ("festival", "flite"):
        if spk.base.engine == "festival":
            results = festival.synthesize(spk.base.name, texts, rate=var.rate, pitch=var.pitch)
        else:
            voice = flite.Flite(spk.base.name)
            voice.set_prosody(rate=var.rate, pitch=var.pitch)
            results = [voice.synth(t) for t in texts]
        for r in results:
            native = align.native_festival_segments(r.phones, r.sample_rate, len(r.audio))
            segs = align.map_segments(native, phonemap.FESTIVAL_RADIO, unmapped)
            segs = align.split_festival_closures(segs, r.audio, r.sample_rate)
            words = [(w, int(round(s * r.sample_rate)), int(round(e * r.sample_rate)))
                     for w, s, e in r.words]
            out.append((r.audio, r.sample_rate, segs, words))
    else:
        engine = espeak.Espeak()
        engine.set_voice(spk.base.name, rate=var.rate, pitch=var.pitch,
                         pitch_range=0.6 + 0.8 * (var.gain_db - 1.0) / 8.0)
        table = phonemap.ESPEAK_TABLES[spk.base.name.split("+")[0]]
        for (_, words), sentence in zip(spk.utterances, texts):
            r = engine.synth(sentence)
            native = align.native_espeak_segments(r.phones, len(r.audio))
            segs = align.map_segments(native, table, unmapped)
            segs = align.split_espeak_closures(segs, r.audio, r.sample_rate)
            out.append((r.audio, r.sample_rate, segs, _espeak_words(words, sentence, r, segs)))
    return out, unmapped


def _espeak_words(words: tuple[str, ...], sentence: str, r: espeak.Rendered,
                  segs: list[align.Segment]) -> list[tuple[str, int, int]]:
    """Word spans from espeak word events (start) up to the next word's start."""
    offsets, pos = [], 0
    for w in words:
        pos = sentence.lower().index(w, pos)
        offsets.append(pos + 1)  # espeak's text_position is 1-based
        pos += len(w)
    starts: dict[int, int] = {}
    for text_pos, sample in r.words:
        idx = int(np.argmin([abs(o - text_pos) for o in offsets]))
        starts.setdefault(idx, sample)
    speech_end = segs[-1][1] if segs and segs[-1][0] in align.SILENCES else len(r.audio)
    out = []
    found = sorted(starts)
    for j, idx in enumerate(found):
        end = starts[found[j + 1]] if j + 1 < len(found) else speech_end
        out.append((words[idx], starts[idx], max(end, starts[idx])))
    return out


def synth_speaker(job: tuple[Speaker, str]) -> dict:
    """Write every missing utterance of one speaker; returns per-utterance sizes and phone counts."""
    spk, root = job
    folder = speaker_dir(Path(root), spk)
    stems = [folder / utt for utt, _ in spk.utterances]
    stats = {"speaker": spk.id, "split": spk.split, "samples": [], "written": 0, "skipped": 0,
             "unmapped": {}}
    if all(_complete(s) for s in stems):
        stats["samples"] = [_samples_of(s) for s in stems]
        stats["skipped"] = len(stems)
        return stats
    rendered, unmapped = _render(spk)  # always all sentences, in order: espeak keeps state
    stats["unmapped"] = dict(unmapped)
    for n, (stem, (utt, words), (audio, sr, segs, wrd)) in enumerate(
            zip(stems, spk.utterances, rendered)):
        if _complete(stem):
            stats["samples"].append(_samples_of(stem))
            stats["skipped"] += 1
            continue
        rng = np.random.default_rng([*spk.seed, 2, n])
        pcm, phn, wrd16 = perturb.finish(audio, sr, segs, wrd, spk.variation, rng)
        _check(stem, pcm, phn)
        _write(stem, pcm, phn, wrd16, text.sentence_text(words))
        stats["samples"].append(len(pcm))
        stats["written"] += 1
    return stats


def _check(stem: Path, pcm: np.ndarray, phn: list[align.Segment]) -> None:
    # our own invariants: a failure here is a bug in the aligner, not a user error
    valid = set(PHONES_61)
    prev = 0
    for phone, start, end in phn:
        if phone not in valid or start != prev or end <= start:
            raise CorpusError(f"{stem}: bad generated segment {(phone, start, end)} after {prev}")
        prev = end
    if prev != len(pcm) or phn[0][0] != "h#" or phn[-1][0] != "h#":
        raise CorpusError(f"{stem}: segments end at {prev} for {len(pcm)} samples")


def _write(stem: Path, pcm: np.ndarray, phn: list, wrd: list, sentence: str) -> None:
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".WAV").unlink(missing_ok=True)  # an old .WAV must not vouch for new files
    with atomic_open(stem.with_suffix(".PHN"), "w", encoding="ascii") as fh:
        fh.writelines(f"{s} {e} {p}\n" for p, s, e in phn)
    with atomic_open(stem.with_suffix(".WRD"), "w", encoding="ascii") as fh:
        fh.writelines(f"{s} {e} {w}\n" for w, s, e in wrd)
    with atomic_open(stem.with_suffix(".TXT"), "w", encoding="ascii") as fh:
        fh.write(f"0 {len(pcm)} {sentence}\n")
    with atomic_path(stem.with_suffix(".WAV")) as tmp:
        sf.write(tmp, pcm, perturb.SAMPLE_RATE, format="NIST", subtype="PCM_16")


# ---------------------------------------------------------------------------------------------
# driver


def _talker_bank(job: tuple[SynthConfig, list[BaseVoice]]) -> list[np.ndarray]:
    """Utterances of training espeak voices (16 kHz float, peak 1) for "talkers" babble; run in a
    fresh process (espeak's output depends on its synthesis history), hence deterministic."""
    cfg, voices = job
    engine = espeak.Espeak()
    pool = text.sentence_pool(2000, cfg.seed + 1)
    rng = np.random.default_rng([cfg.seed, 41])
    bank = []
    for i in range(TALKER_BANK_SIZE):
        voice = voices[i % len(voices)]
        engine.set_voice(voice.name, rate=float(rng.uniform(0.9, 1.15)), pitch=float(rng.uniform(0.8, 1.25)))
        r = engine.synth(text.sentence_text(pool[int(rng.integers(len(pool)))]))
        ratio = perturb.resample_ratio(r.sample_rate, 1.0)
        x = resample_poly(r.audio.astype(np.float64), ratio.numerator, ratio.denominator)
        peak = float(np.abs(x).max(initial=0.0))
        if peak > 0:
            bank.append(x / peak)
    return bank


def _build_talker_bank(cfg: SynthConfig, speakers: list[Speaker]) -> None:
    if not any(spk.variation.noise == "talkers" for spk in speakers):
        return
    train = {spk.base.name: spk.base for spk in speakers
             if spk.split == "train" and spk.base.engine == "espeak"}
    voices = [train[name] for name in sorted(train)]
    if not voices:
        raise ConfigError("synth: \"talkers\" noise needs espeak voices in the train split "
                          "(synth.espeak_variants > 0)")
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        perturb.set_talker_bank(pool.apply(_talker_bank, ((cfg, voices),)))


def _versions() -> dict[str, str]:
    out = {"festival": festival.version(), "flite": flite.version()}
    try:
        out["espeak-ng"] = espeak.Espeak().version() if espeak.find_library() else "missing"
    except Exception as exc:  # version probing must not stop generation
        out["espeak-ng"] = f"unknown ({exc})"
    for pkg in ("ese", "numpy", "scipy", "soundfile"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "missing"
    out["libsndfile"] = sf.__libsndfile_version__
    return out


def _probe_versions() -> dict[str, str]:
    # libespeak-ng is process-global: probe its version in a throw-away process
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        return pool.apply(_versions)


def synthesize_corpus(out_dir: Path, cfg: SynthConfig, *, progress: bool = True) -> dict:
    """Generate (or complete) the corpus under ``out_dir``; returns the summary it also writes."""
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    speakers = plan(cfg)
    check_tools(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = cfg.jobs or os.cpu_count() or 1

    write_json(out_dir / "splits.json", {
        "version": 1,
        **{s: sorted(spk.id for spk in speakers if spk.split == s) for s in ("dev", "test", "train")},
        **({"proxy": sorted(spk.id for spk in speakers if spk.split == "proxy")}
           if any(spk.split == "proxy" for spk in speakers) else {}),
        "generator": {"name": "ese.data.synth", "config": {k: v for k, v in dataclasses.asdict(cfg).items()
                                 if k != "jobs"},  # jobs does not change a byte
                      "versions": _probe_versions()},
        "speakers": {spk.id: {"split": spk.split, "engine": spk.base.engine, "voice": spk.base.name,
                              "family": spk.base.family, "sex": spk.base.sex, "dr": spk.base.dr,
                              **dataclasses.asdict(spk.variation)} for spk in speakers},
    })

    _build_talker_bank(cfg, speakers)  # before the workers fork: they inherit it
    # slowest first (HTS, then festival diphones, then espeak) so the tail of the run stays busy
    order = sorted(speakers, key=lambda s: (s.base.name not in festival.HTS_VOICES,
                                            s.base.engine != "festival"))
    work = [(spk, str(out_dir)) for spk in order]
    total_utts = sum(len(s.utterances) for s in speakers)
    results = []
    ctx = multiprocessing.get_context("fork")
    # a fresh process per speaker: espeak-ng output depends on the process's synthesis history
    with ctx.Pool(min(jobs, len(work)), maxtasksperchild=1) as pool:
        stream = pool.imap_unordered(synth_speaker, work, chunksize=1)
        if progress:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeRemainingColumn)
            with Progress(TextColumn("synth"), BarColumn(), MofNCompleteColumn(),
                          TimeRemainingColumn()) as bar:
                task = bar.add_task("utterances", total=total_utts)
                for res in stream:
                    results.append(res)
                    bar.advance(task, len(res["samples"]))
        else:
            results = list(stream)

    summary = _summarise(results, time.perf_counter() - t0, jobs)
    write_json(out_dir / "synth_summary.json", summary)
    return summary


def _summarise(results: list[dict], seconds: float, jobs: int) -> dict:
    unmapped: Counter = Counter()
    utts, spks, samples = Counter(), Counter(), Counter()
    for res in results:
        spks[res["split"]] += 1
        utts[res["split"]] += len(res["samples"])
        samples[res["split"]] += sum(res["samples"])
        unmapped.update(res["unmapped"])
    names = [s for s in ALL_SPLITS if s in SPLITS or spks[s]]
    hours = {s: round(samples[s] / perturb.SAMPLE_RATE / 3600, 4) for s in names}
    return {
        "splits": {s: {"utterances": utts[s], "speakers": spks[s], "hours": hours[s]} for s in names},
        # the per-key maps below predate "splits"; ese run's report (corpus.synth) keeps them
        "utterances": {s: utts[s] for s in names},
        "speakers": {s: spks[s] for s in names},
        "hours": hours,
        "total_hours": round(sum(hours.values()), 4),
        "written": sum(r["written"] for r in results),
        "skipped": sum(r["skipped"] for r in results),
        "seconds": round(seconds, 2),
        "jobs": jobs,
        "unmapped_phones": dict(sorted(unmapped.items())),
    }
