"""In-memory feature sets: what the data stage hands to training, evaluation and compression."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ese.data.frontend import Normalisation


@dataclass
class Utterance:
    """One utterance's features and frame labels.

    ``labels`` are indices into ``PHONES_48`` with -1 on frames that carry no class (``q``; every
    frame of a word-transcript corpus, which has no alignment); ``phones`` is the reference phone
    sequence (61-set, in order: the ``.PHN`` file's, or the pronunciation dictionary's for word
    transcripts), used for PER after folding to 39 classes and as CTC targets.
    """

    utt_id: str
    speaker: str
    feats: np.ndarray  # (T, D) float32
    labels: np.ndarray  # (T,) int64
    phones: tuple[str, ...] = ()

    @property
    def num_frames(self) -> int:
        return int(self.feats.shape[0])


@dataclass
class FeatureSet:
    """The utterances of one split (train, dev or test); ``normalisation``: the statistics of its
    features before CMVN (what a deployed model normalises with), when they were measured."""

    name: str
    utterances: list[Utterance] = field(default_factory=list)
    normalisation: Normalisation | None = None
    oov_words: dict[str, int] = field(default_factory=dict)  # word -> occurrences (word transcripts)
    skipped: list[str] = field(default_factory=list)  # utterance ids left out for OOV words

    @property
    def aligned(self) -> bool:
        """True when some frame carries a label (a corpus with phone alignments)."""
        return any(bool((u.labels >= 0).any()) for u in self.utterances)

    def __len__(self) -> int:
        return len(self.utterances)

    @property
    def num_frames(self) -> int:
        return sum(u.num_frames for u in self.utterances)

    @property
    def feature_dim(self) -> int:
        return int(self.utterances[0].feats.shape[1]) if self.utterances else 0
