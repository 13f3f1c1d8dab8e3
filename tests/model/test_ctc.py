"""CTC: the config's output layer, targets, greedy decoding, training on phone sequences only."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from ese.config import Config, ModelConfig, TrainConfig
from ese.data.dataset import FeatureSet, Utterance
from ese.data.phones import BLANK, BLANK_INDEX, INDEX_48, output_classes, output_kind
from ese.errors import ConfigError, FeatureError
from ese.model.checkpoint import checkpoint_config, load_checkpoint
from ese.model.ctc import ctc_targets, sequence_nll
from ese.model.decode import evaluate, transcribe
from ese.model.scoring import ctc_to_phones, ref_phones
from ese.model.train import Distillation, train_model

from toy_data import TOY_DIM, toy_featureset  # noqa: E402


def ctc_config(**train: object) -> Config:
    tcfg = dict(loss="ctc", epochs=6, batch_size=2, lr=3e-2, output_delay=2, patience=4, threads=1, seed=3)
    tcfg.update(train)
    return Config.from_saved(Config(model=ModelConfig(input_dim=TOY_DIM, hidden=24, proj=12, layers=1),
                                    train=TrainConfig(**tcfg)).to_dict())


def unaligned(fset: FeatureSet) -> FeatureSet:
    """The same utterances without frame labels: what a word-transcript corpus gives."""
    return FeatureSet(fset.name, [dataclasses.replace(u, labels=np.full_like(u.labels, -1))
                                  for u in fset.utterances])


@pytest.fixture(scope="module")
def toy():
    return unaligned(toy_featureset("train", 60, seed=1)), unaligned(toy_featureset("dev", 12, seed=2))


def test_ctc_adds_the_blank_output_and_is_checked():
    cfg = Config.load(preset="tiny", overrides=["train.loss=ctc"])
    assert cfg.model.num_classes == 49 and output_kind(49) == "ctc" and output_kind(48) == "ce"
    assert output_classes(49)[-1] == BLANK and output_classes(49)[BLANK_INDEX] == BLANK
    assert Config.load(preset="tiny").model.num_classes == 48
    with pytest.raises(ConfigError, match="train.loss must be one of ce, ctc"):
        Config.load(preset="tiny", overrides=["train.loss=mse"])
    with pytest.raises(ConfigError, match="CTC model's output layer"):
        Config.load(preset="tiny", overrides=["model.num_classes=49"])
    with pytest.raises(ConfigError, match="train.loss=ctc needs model.num_classes 48"):
        Config.load(preset="tiny", overrides=["train.loss=ctc", "model.num_classes=10"])


def test_targets_fold_to_48_without_silence_and_repeats():
    seq = ["h#", "b", "bcl", "b", "ax", "tcl", "t", "q", "pau", "t", "ix", "ix", "epi", "zh", "h#"]
    names = [next(p for p, k in INDEX_48.items() if k == i) for i in ctc_targets(seq)]
    assert names == ["b", "ax", "t", "ix", "zh"]  # closures, q, silences gone; b b and t t merged


def test_ctc_greedy_decoding():
    b = BLANK_INDEX
    aa, s, iy, ao, sil = (INDEX_48[p] for p in ("aa", "s", "iy", "ao", "sil"))
    pred = np.array([b, aa, aa, b, aa, s, s, b, b, iy, sil, iy, ao, aa, b])
    # repeats collapse; aa blank aa is two tokens, merged again like the references (which never
    # hold a phone twice in a row); silence dropped but still splits iy iy; ao, aa fold to one aa
    assert ctc_to_phones(pred) == ["aa", "s", "iy", "iy", "aa"]
    assert ctc_to_phones(np.array([s, b, s, iy])) == ["s", "iy"]
    assert ctc_to_phones(np.array([], dtype=np.int64)) == [] and ctc_to_phones(np.array([b, b])) == []


def test_sequence_nll_is_torch_ctc():
    logp = torch.randn(20, 49).log_softmax(-1)
    phones = ["s", "iy", "aa"]
    tgt = torch.tensor([INDEX_48[p] for p in phones])
    expect = torch.nn.functional.ctc_loss(logp[:, None], tgt[None], torch.tensor([20]), torch.tensor([3]),
                                          blank=48, reduction="sum")
    assert sequence_nll(logp, phones) == pytest.approx(float(expect), rel=1e-6)
    assert sequence_nll(logp.numpy(), phones) == pytest.approx(float(expect), rel=1e-6)


def test_ctc_learns_phone_sequences_without_alignments(toy, tmp_path):
    train, dev = toy
    cfg = ctc_config()
    res = train_model(cfg, train, dev, tmp_path / "ctc.pt", progress=False)
    hist = res.history
    assert hist[-1]["train_loss"] < 0.5 * hist[0]["train_loss"]
    best = hist[res.best_epoch - 1]
    assert best["dev_per"] < 10 and np.isnan(best["dev_frame_acc"])
    scored = evaluate(res.model, dev, cfg.train.output_delay)
    assert scored["loss"] == pytest.approx(best["dev_loss"], rel=1e-5)
    assert scored["frames"] == dev.num_frames  # the CTC loss is per output frame
    u = dev.utterances[0]
    hyp = transcribe(res.model, u.feats, cfg.train.output_delay)
    assert hyp == evaluate(res.model, FeatureSet("one", [u]), 2, return_hyps=True)["utterances"][0]["hyp"]
    model, meta = load_checkpoint(tmp_path / "ctc.pt")  # the model says what it is
    assert model.cfg.num_classes == 49 and meta["phones"][-1] == BLANK
    assert checkpoint_config(meta).train.loss == "ctc"
    meta["config"] = {}  # a model exported without its config still decodes and retrains as CTC
    assert checkpoint_config(meta).train.loss == "ctc"


def test_ctc_resume_is_exact_and_distillation_runs(toy, tmp_path):
    train, dev = toy
    cfg = ctc_config(epochs=3)
    full = train_model(cfg, train, dev, tmp_path / "full.pt", progress=False)
    train_model(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=1)), train, dev,
                tmp_path / "cut.pt", progress=False)
    resumed = train_model(cfg, train, dev, tmp_path / "cut.pt", resume=True, progress=False)
    assert all(torch.equal(p, q) for p, q in zip(full.model.parameters(), resumed.model.parameters()))
    still = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=1, lr=1e-9))
    kd = train_model(still, train, dev, tmp_path / "kd.pt", progress=False, init_weights=full.model.state_dict(),
                     distill=Distillation(full.model, weight=1.0, temperature=2.0))
    # pure distillation from itself: the student is the teacher, the KL over aligned frames is 0
    assert kd.history[0]["train_loss"] < 1e-6
    half = train_model(still, train, dev, tmp_path / "half.pt", progress=False, init_weights=full.model.state_dict(),
                       distill=Distillation(full.model, weight=0.5, temperature=2.0))
    plain = train_model(still, train, dev, tmp_path / "plain.pt", progress=False, init_weights=full.model.state_dict())
    assert half.history[0]["train_loss"] == pytest.approx(0.5 * plain.history[0]["train_loss"], rel=1e-4)


def test_cross_entropy_refuses_a_corpus_without_alignments(toy, tmp_path):
    train, dev = toy
    cfg = dataclasses.replace(ctc_config(), train=dataclasses.replace(ctc_config().train, loss="ce"),
                              model=dataclasses.replace(ctc_config().model, num_classes=48))
    with pytest.raises(FeatureError, match="no phone alignments .* train.loss=ctc"):
        train_model(cfg, train, dev, tmp_path / "ce.pt", progress=False)


def test_reference_phones_and_targets_agree():
    # what CTC learns (48-set targets) scores as the reference does (39-set, silence dropped)
    seq = ["h#", "sh", "iy", "pau", "s", "ao", "aa", "m", "h#"]
    names = [next(p for p, k in INDEX_48.items() if k == i) for i in ctc_targets(seq)]
    pred = np.array([INDEX_48[p] for p in names])
    assert ctc_to_phones(np.insert(pred, range(1, len(pred)), BLANK_INDEX)) == ref_phones(seq)
