"""How the decoder's switch penalty was chosen: PER per split of one model at several penalties.

    python scripts/switch_penalty_sweep.py MODEL --corpus CORPUS [--penalties 0,2,4,6,8,12]
                                           [--splits dev,test,proxy] [--engine ...] [--json OUT]

The model's log-probabilities are computed once per split (by the engine ``ese eval`` would use
for the file), then decoded at every penalty (``ese.model.phone_loop``). Choose on ``dev`` only:
``test`` and ``proxy`` are for reporting. docs/decoding.md shows the tables this printed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ese.artefact import open_artefact
from ese.data.phones import output_kind
from ese.data.store import load_split
from ese.model.scoring import decode_log_probs, ref_phones, score


def _log_probs(art, fset, engine: str | None):
    """One (T, C) log-probability array per utterance, in corpus order."""
    if art.fixed_point or engine == "ese-cpu":
        from ese.runtime.engine import Engine
        eng = (Engine.from_qmodel(art.qmodel, "fixed") if art.fixed_point
               else Engine.from_model(art.model, art.output_delay))
        return eng.posteriors_batch([u.feats for u in fset.utterances]), eng.num_classes
    from ese.model.decode import batched_log_probs
    out = [None] * len(fset.utterances)
    for k, lp in batched_log_probs(art.model, [u.feats for u in fset.utterances], art.output_delay):
        out[k] = lp.numpy()
    return out, art.model.cfg.num_classes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--cache-dir", type=Path)
    ap.add_argument("--penalties", default="0,1,2,3,4,5,6,7,8,10,12")
    ap.add_argument("--splits", default="dev,test,proxy")
    ap.add_argument("--engine", choices=("torch", "ese-cpu"))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    art = open_artefact(args.model)
    if art.features is None:  # scoring needs the feature configuration (not the normalisation: CMVN per speaker)
        raise SystemExit(f"{art.path} ({art.what}) lacks the feature configuration; complete it with ese complete")
    penalties = [float(p) for p in args.penalties.split(",")]
    table: dict[str, dict[str, dict]] = {}
    for split in args.splits.split(","):
        fset = load_split(args.corpus, split, art.features, cache_dir=args.cache_dir, progress=False)
        lps, classes = _log_probs(art, fset, args.engine)
        kind = output_kind(classes)
        refs = [ref_phones(u.phones) for u in fset.utterances]
        table[split] = {}
        for p in penalties:
            r = score(refs, [decode_log_probs(lp, kind, p) for lp in lps])
            table[split][f"{p:g}"] = {k: r[k] for k in ("per", "sub", "del", "ins", "n_ref")}
            print(f"{split:6s} penalty {p:5g}: PER {r['per']:6.2f}  sub {r['sub']:5d}  del {r['del']:5d}  "
                  f"ins {r['ins']:5d}", flush=True)
    best = min(table["dev"], key=lambda p: table["dev"][p]["per"]) if "dev" in table else None
    if best is not None:
        print(f"best on dev: {best}")
    if args.json:
        args.json.write_text(json.dumps({"model": str(args.model), "corpus": str(args.corpus),
                                         "best_on_dev": best, "per": table}, indent=1))


if __name__ == "__main__":
    main()
