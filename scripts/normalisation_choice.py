"""Which normalisation a deployed model should use: test PER of one model file under each.

    python scripts/normalisation_choice.py MODEL --corpus CORPUS [--split test] [--json OUT]

MODEL is any complete model file (its training-set statistics are the prior). Rows: training's
per-speaker CMVN and per-utterance CMVN (both need audio a stream does not have yet), the global
statistics, and the running normalisation with several priors and warm-ups, each run through the
deployed front end (``ese.data.frontend``) and ``Recognizer.transcribe`` exactly as
``ese transcribe`` runs. docs/api.md shows the table this printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from ese.api import Recognizer
from ese.artefact import open_artefact
from ese.data import features as F
from ese.data.frontend import FrontEnd, Normalisation
from ese.data.timit import read_audio, split_records
from ese.compress.fixedpoint import log_softmax
from ese.model.scoring import decode_log_probs, ref_phones, score

VARIANTS = [("global", 10, 1), ("running", 50, 1), ("running", 100, 1), ("running", 400, 1),
            ("running", 10, 50), ("running", 10, 100), ("running", 10, 200), ("running", 10, 300)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    art = open_artefact(args.model)
    art.require()
    records = split_records(args.corpus, args.split)
    audio = [read_audio(r.wav, art.features.sample_rate) for r in records]
    refs = [ref_phones([line.split()[2] for line in r.phn.read_text().splitlines() if line.strip()])
            for r in records]
    rows = {}
    rec = Recognizer(art, threads=1)
    raw = []  # deltas, no normalisation: for the whole-audio CMVN rows
    for a in audio:
        fe = FrontEnd(art.features, Normalisation("none"))
        raw.append(np.concatenate([fe.accept(a), fe.finish()]))
    for mode in ("speaker", "utterance"):
        feats = F.apply_cmvn(raw, [r.speaker for r in records], mode)
        hyps = [decode_log_probs(log_softmax(rec.logits(f)), "ce", rec.switch_penalty) for f in feats]
        rows[f"{mode} CMVN"] = score(refs, hyps)["per"]
        print(f"{mode} CMVN: {rows[f'{mode} CMVN']:.2f}", flush=True)
    for kind, prior, warm in VARIANTS:
        art.normalisation = dataclasses.replace(art.normalisation, kind=kind, prior_frames=prior, warmup_frames=warm)
        rec = Recognizer(art, threads=1)
        name = f"{kind}" + (f", prior {prior}, warm-up {warm}" if kind == "running" else "")
        rows[name] = score(refs, [rec.transcribe(a) for a in audio])["per"]
        print(f"{name}: {rows[name]:.2f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"model": str(args.model), "utterances": len(records), "per": rows}, indent=1))


if __name__ == "__main__":
    main()
