"""A TIMIT-layout speech corpus synthesised locally with festival and espeak-ng.

``synthesize_corpus(out_dir, cfg)`` writes ``TRAIN``/``TEST``/``DR<k>``/speaker/utterance
``.WAV`` (16 kHz NIST SPHERE) + ``.PHN`` + ``.WRD`` + ``.TXT`` and ``splits.json``; see
docs/synth-corpus.md for the phone tables, the speaker scheme and the splits.
"""

from ese.data.synth.corpus import APT_LINE, check_tools, plan, synthesize_corpus

__all__ = ["APT_LINE", "check_tools", "plan", "synthesize_corpus"]
