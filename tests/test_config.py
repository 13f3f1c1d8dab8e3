import pytest

from ese.config import Config, FeatureConfig
from ese.errors import ConfigError


def test_presets_set_the_paper_shape():
    paper = Config.load(preset="paper")
    assert (paper.model.input_dim, paper.model.hidden, paper.model.proj) == (153, 1024, 512)
    assert paper.features.dim == paper.model.input_dim == 153
    assert Config.load().model.hidden < paper.model.hidden


def test_file_then_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[train]\nlr = 0.01\nepochs = 7\n[features]\ncmvn = 'utterance'\n")
    cfg = Config.load(path, overrides=["train.lr=0.5", "model.peepholes=false", "synth.snr_db=[10, 20]"])
    assert cfg.train.lr == 0.5 and cfg.train.epochs == 7 and cfg.features.cmvn == "utterance"
    assert cfg.model.peepholes is False and cfg.synth.snr_db == (10.0, 20.0)


def test_round_trip_through_a_dict():
    cfg = Config.load(preset="tiny", overrides=["train.seed=5"])
    from ese.config import from_dict

    assert from_dict(Config, cfg.to_dict()) == cfg


@pytest.mark.parametrize("override, message", [
    ("train.nope=1", "unknown setting 'nope' in TrainConfig"),
    ("train.epochs=2.5", "TrainConfig.epochs must be an integer, not 2.5"),
    ("train.lr=fast", "TrainConfig.lr must be a number, not 'fast'"),
    ("model.peepholes=1", "ModelConfig.peepholes must be true or false, not 1"),
    ("lr=1", "must look like section.key=value"),
])
def test_bad_overrides_quote_the_value(override, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        Config.load(overrides=[override])


def test_unknown_preset_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        Config.load(preset="huge")
    with pytest.raises(ConfigError, match="does not exist"):
        Config.load(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Config.load(bad)


def test_feature_dim_follows_the_recipe():
    assert FeatureConfig(num_mel_bins=40, use_energy=False, delta_order=1).dim == 80
