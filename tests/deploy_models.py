"""Small self-contained model files for the deployment tests: a trained tiny checkpoint, its
fixed-point model and compiled image (all carrying features, normalisation and phones), and the
helpers that make a file look like one written before that metadata existed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import soundfile as sf

from ese.config import Config, FeatureConfig, HardwareConfig
from ese.data.frontend import Normalisation


def unit_normalisation(features: FeatureConfig) -> Normalisation:
    """Identity statistics (mean 0, std 1): enough for tests of everything but accuracy."""
    return Normalisation("global", (0.0,) * features.dim, (1.0,) * features.dim, 1, trained_with=features.cmvn)


def make_models(root: Path, corpus: Path) -> dict[str, Path]:
    """Train the tiny preset briefly on ``corpus``, quantize it, compile it: {"pt", "qnpz", "ese"}."""
    from ese.compiler.image import save_program
    from ese.compiler.program import compile_qmodel
    from ese.compress.qmodel import save_qmodel
    from ese.compress.quantize import quantize_checkpoint
    from ese.data.store import load_split
    from ese.model.train import train_model

    cfg = Config.load(preset="tiny", overrides=["train.epochs=2", "train.threads=1"])
    sets = {s: load_split(corpus, s, cfg.features, cache_dir=root / "features", progress=False)
            for s in ("train", "dev")}
    paths = {"pt": root / "tiny.pt", "qnpz": root / "tiny.qnpz", "ese": root / "tiny.ese"}
    result = train_model(cfg, sets["train"], sets["dev"], paths["pt"], progress=False)
    qm = quantize_checkpoint(result.model, cfg, sets["train"])
    save_qmodel(paths["qnpz"], qm)
    save_program(paths["ese"], compile_qmodel(qm, HardwareConfig(pes=4)))
    return paths


def strip_qmodel(src: Path, out: Path) -> Path:
    """``src`` re-saved without features and normalisation, as files were before they existed."""
    from ese.compress.qmodel import load_qmodel, save_qmodel
    save_qmodel(out, dataclasses.replace(load_qmodel(src), features=None, normalisation=None))
    return out


def strip_checkpoint(src: Path, out: Path) -> Path:
    """``src`` without its normalisation entry."""
    from ese.model.checkpoint import read_checkpoint, write_checked
    state = read_checkpoint(src)
    state.pop("normalisation", None)
    write_checked(out, state)
    return out


def write_wav(path: Path, corpus: Path, split: str = "TEST", count: int = 4) -> Path:
    """A RIFF WAV (16-bit PCM) of the first ``count`` utterances of a corpus split, one after the
    other (the corpus holds short NIST SPHERE files; a stream should outlast the warm-up)."""
    parts = [sf.read(src, dtype="int16") for src in sorted((corpus / split).rglob("*.WAV"))[:count]]
    sf.write(path, np.concatenate([p for p, _ in parts]), parts[0][1], subtype="PCM_16", format="WAV")
    return path
