"""Feature extraction for a corpus split, with a cache keyed by the feature config and the files.

The key hashes the feature configuration, the extraction code version and every input file's
path, size and modification time, so a different config or an edited corpus never reads a stale
cache, while re-running with the same inputs loads the cached arrays in a fraction of a second.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
from rich.progress import Progress

from ese.atomic import atomic_path
from ese.config import FeatureConfig
from ese.data import features as F
from ese.data.dataset import FeatureSet, Utterance
from ese.data.frontend import Normalisation, measure_normalisation
from ese.data.timit import UttRecord, read_audio, read_phn, split_records
from ese.errors import FeatureError

FEATURE_CODE_VERSION = 1  # bump whenever extraction changes its numbers


def cache_key(cfg: FeatureConfig, records: list[UttRecord]) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"cfg": dataclasses.asdict(cfg), "v": FEATURE_CODE_VERSION}, sort_keys=True).encode())
    for r in records:
        for p in (r.wav, r.phn):
            st = p.stat()
            h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def extract_utterance(rec: UttRecord, cfg: FeatureConfig) -> Utterance:
    """Static features (before deltas and CMVN) and frame labels of one utterance."""
    samples = read_audio(rec.wav, cfg.sample_rate)
    segments = read_phn(rec.phn, num_samples=len(samples))
    static = F.static_features(samples, cfg, str(rec.wav))
    labels = F.frame_labels(segments, static.shape[0], cfg)
    return Utterance(rec.utt_id, rec.speaker, static, labels, tuple(s.phone for s in segments))


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
    utts: list[Utterance] = []
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(f"features {split}", total=len(records))
        for rec in records:
            utts.append(extract_utterance(rec, cfg))
            bar.advance(task)
    with_deltas = [F.add_deltas(u.feats, cfg.delta_order, cfg.delta_window) for u in utts]
    norm = measure_normalisation(with_deltas, cfg) if sum(len(f) for f in with_deltas) else None
    finished = F.apply_cmvn(with_deltas, [u.speaker for u in utts], cfg.cmvn)
    for u, feats in zip(utts, finished):
        u.feats = feats
        F.check_finite(feats, u.utt_id)
    fset = FeatureSet(split, utts, norm)
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
        norm = None if raw_norm is None else Normalisation.from_dict(raw_norm)
    except (OSError, KeyError, ValueError, FeatureError) as exc:
        raise FeatureError(f"feature cache {path} is unreadable ({exc}); delete it to rebuild") from None
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    utts = [
        Utterance(str(utt_ids[i]), str(speakers[i]), feats[bounds[i]:bounds[i + 1]],
                  labels[bounds[i]:bounds[i + 1]], tuple(str(phones[i]).split()))
        for i in range(len(lengths))
    ]
    return FeatureSet(split, utts, norm)
