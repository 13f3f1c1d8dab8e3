"""One frozen dataclass tree for every stage, loaded from TOML and overridable by CLI flags.

``Config.load(path, overrides=["train.lr=3e-3", "model.hidden=256"])`` is how the CLI builds it;
presets (``default``, ``paper``, ``tiny``) live in ``ese/presets/*.toml``.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ese.cell import cell_spec
from ese.errors import ConfigError


@dataclass(frozen=True)
class SynthConfig:
    """The synthetic TIMIT-layout corpus (``ese data synth``)."""

    hours: float = 0.25  # total audio across all splits
    seed: int = 0
    jobs: int = 0  # 0 = all cores
    festival_voices: tuple[str, ...] = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")
    espeak_variants: int = 24  # how many espeak-ng voice variants to draw from the installed set
    espeak_accents: tuple[str, ...] = ("en-us", "en")  # each variant is a base voice per accent
    test_voice_fraction: float = 0.25  # base-voice families held out of training for test
    dev_voice_fraction: float = 0.15  # base-voice families held out of training for dev
    dev_fraction: float = 0.1  # share of the audio (and of the sentences) in dev
    test_fraction: float = 0.15  # share of the audio (and of the sentences) in test
    utterances_per_speaker: int = 10  # as in TIMIT
    snr_db: tuple[float, ...] = (40.0, 25.0, 15.0)  # additive-noise SNRs drawn per speaker
    noise_types: tuple[str, ...] = ("white", "pink", "babble")  # drawn per speaker
    pitch_range: tuple[float, float] = (0.85, 1.2)
    rate_range: tuple[float, float] = (0.85, 1.2)
    vtlp_range: tuple[float, float] = (0.9, 1.1)  # speed / vocal-tract perturbation factor
    # acoustic variation of the augmented splits (docs/synth-corpus.md); the test split keeps the
    # clean recipe above (pitch, rate, speed, snr_db, noise_types) so that it stays comparable
    augment_splits: tuple[str, ...] = ("train", "dev")
    room_prob: float = 0.4  # share of speakers recorded in a simulated room
    rt60_range: tuple[float, float] = (0.15, 0.8)  # reverberation time (s)
    drr_db_range: tuple[float, float] = (0.0, 15.0)  # direct-to-reverberant ratio (dB)
    channel_prob: float = 0.5  # share of speakers heard through a coloured / band-limited channel
    hp_range: tuple[float, float] = (50.0, 300.0)  # channel high-pass corner (Hz)
    lp_range: tuple[float, float] = (3400.0, 7800.0)  # channel low-pass corner (Hz)
    eq_gain_db: float = 6.0  # microphone colouring: up to 3 peaks of +- this gain
    codecs: tuple[str, ...] = ("none", "mulaw", "telephone", "clip")  # drawn per channel
    augment_snr_db: tuple[float, ...] = (40.0, 30.0, 20.0, 15.0, 10.0)  # drawn per utterance
    augment_noise_types: tuple[str, ...] = ("white", "pink", "babble", "talkers")  # per speaker
    talkers_range: tuple[int, int] = (3, 8)  # voices in "talkers" babble (other synthetic speakers)
    # the transfer proxy: every voice of proxy_engine, never heard in train / dev / test, always
    # reverberated, coloured and noisy ("" = no proxy split; that engine's voices join the others)
    # cmu_us_slt and cmu_us_kal16 are left out: their speakers are festival's slt and kal (in training)
    flite_voices: tuple[str, ...] = ("cmu_us_awb", "cmu_us_rms")
    proxy_engine: str = "flite"
    proxy_fraction: float = 0.1  # proxy audio as a share of `hours` (added on top of it)
    proxy_snr_db: tuple[float, ...] = (20.0, 15.0, 10.0, 5.0)


@dataclass(frozen=True)
class FeatureConfig:
    """Kaldi-compatible log-mel filterbanks + deltas + CMVN.

    Default recipe for the paper's 153-dim input: 50 mel bins + log energy = 51 static
    coefficients, with deltas and delta-deltas: 51 x 3 = 153.
    """

    sample_rate: int = 16000
    num_mel_bins: int = 50
    use_energy: bool = True
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    low_freq: float = 20.0
    high_freq: float = 0.0  # <= 0 means offset from Nyquist, as in Kaldi
    dither: float = 0.0  # 0 keeps features deterministic
    delta_order: int = 2
    delta_window: int = 2
    cmvn: str = "speaker"  # speaker | utterance | none

    @property
    def dim(self) -> int:
        return (self.num_mel_bins + int(self.use_energy)) * (self.delta_order + 1)

    @property
    def frame_shift_samples(self) -> int:
        return int(round(self.sample_rate * self.frame_shift_ms / 1000))


@dataclass(frozen=True)
class ModelConfig:
    """Acoustic model shape (ESE.md section 1): a stack of recurrent layers of one cell kind."""

    input_dim: int = 153
    hidden: int = 256  # cells per layer
    proj: int = 128  # projection size (y_t); a cell without projection (gru) has y = h: proj = hidden
    layers: int = 2
    num_classes: int = 48
    peepholes: bool = True
    cell: str = "lstmp"  # the recurrent cell (ese.cell.CELLS); every stage reads its description

    def __post_init__(self) -> None:
        # a cell without a projection (the GRU) has y = h: its y width is the cell count, and the
        # LSTMP's peephole switch does not apply to it
        spec = cell_spec(self.cell)
        if spec.projection is None and self.proj != self.hidden:
            object.__setattr__(self, "proj", self.hidden)
        if self.peepholes and "peepholes" not in {v.flag for v in spec.vectors}:
            object.__setattr__(self, "peepholes", False)


@dataclass(frozen=True)
class TrainConfig:
    """Frame-wise cross-entropy (or CTC) training with an output delay."""

    loss: str = "ce"  # ce: frame labels from phone alignments | ctc: phone sequences only (docs/ctc.md)
    epochs: int = 20
    batch_size: int = 16  # utterance chunks per minibatch
    chunk_frames: int = 200  # truncated-BPTT chunk length; state is not carried across chunks
    optimizer: str = "adam"  # adam | sgd
    lr: float = 2e-3
    lr_decay: float = 0.5  # multiply lr when dev loss stops improving
    weight_decay: float = 0.0
    momentum: float = 0.9
    grad_clip: float = 1.0
    output_delay: int = 3  # frames: the target of frame t is emitted at t + delay
    patience: int = 3  # epochs without dev improvement before stopping
    min_lr: float = 1e-5
    seed: int = 0
    threads: int = 0  # 0 = chosen from the machine's load (ese.threads.auto_threads); kept on resume
    precision: str = "fp32"  # fp32 | bf16 (autocast of the forward pass; weights stay fp32)


@dataclass(frozen=True)
class PruneConfig:
    """Load-balance-aware (or plain magnitude) pruning with retraining (ESE.md section 2)."""

    density: float = 0.11  # overall fraction of the recurrent layers' matrix weights kept
    balance: str = "pes:32"  # "pes:N" = every PE's sub-matrix to the same density; "none" = per matrix
    steps: tuple[float, ...] = (0.5, 0.3, 0.2)  # intermediate densities; those <= density are skipped
    retrain_epochs: int = 2  # epochs of masked retraining after each pruning step (0 = none)
    retrain_lr: float = 5e-4
    per_matrix: str = "uniform"  # uniform | sensitivity (densities chosen from a sensitivity scan)
    sensitivity_densities: tuple[float, ...] = (1.0, 0.5, 0.3, 0.2, 0.1, 0.05)
    report_pes: int = 32  # PEs for the per-PE statistics when balance = "none"
    recipe: str = "ese"  # ese: prune -> retrain per step | gradual: cubic density ramp in one run
    ramp_epochs: int = 4  # gradual: epochs over which the density falls from 1 to the target
    finetune_epochs: int = 6  # gradual: most epochs at the target (early stopping on dev loss)
    updates_per_epoch: int = 8  # gradual: mask recomputations per ramp epoch
    init: str = "dense"  # gradual: start from the dense model | "scratch" (random init, one run)
    dense_epochs: int = 4  # gradual from scratch: dense epochs before the ramp starts
    distill: float = 0.0  # weight of distillation from the dense model's posteriors (0 = off)
    distill_temperature: float = 1.0


@dataclass(frozen=True)
class QuantConfig:
    """Dynamic fixed point (ESE.md section 3; the full spec is docs/fixed-point.md)."""

    weight_bits: int = 12  # every LSTM matrix and the output layer, binary point per matrix
    act_bits: int = 16  # features, vectors, gate pre-activations, gates, cell state, outputs
    acc_bits: int = 32  # SpMV accumulators, saturated once per sum
    lut_index_bits: int = 10  # 2**bits entries per table
    sigmoid_range: float = 8.0  # sigmoid LUT covers [-range, range), clamped outside; power of 2
    tanh_range: float = 4.0  # tanh LUT likewise
    act_headroom_bits: int = 1  # spare integer bits above the calibrated range of each activation
    calibration_utterances: int = 64  # train utterances whose float run sets the binary points


@dataclass(frozen=True)
class HardwareConfig:
    """The accelerator: the compiler's encoding and the cycle model's timing (docs/cycle-model.md).

    Encoding parameters (``pes``, ``index_bits``) change the program image; the others only the
    simulated timing, so ``ese simulate`` may override them on an existing image.
    """

    pes: int = 32  # PEs per channel; rows interleave over them (ese.partition)
    index_bits: int = 4  # relative row index per entry; weight width is quant.weight_bits
    channels: int = 1  # channels, each running its own utterance, sharing the weight stream
    clock_mhz: float = 200.0
    queue_depth: int = 8  # ActQueue entries per PE
    pointer_latency: int = 1  # cycles from popping an activation to its column's first MAC
    pointer_prefetch: bool = True  # read the next column's pointers during the current column
    mac_latency: int = 1  # multiply-accumulate pipeline depth (drain at the end of an SpMV)
    entries_per_cycle: int = 1  # sparse-matrix reads (MACs) per PE per cycle
    ew_lanes: int = 0  # cells per cycle through the element-wise unit; 0 = one lane per PE
    ew_latency: int = 4  # element-wise pipeline depth, LUT reads included
    lut_latency: int = 1  # cycles of one LUT read (part of ew_latency's path, reported alone)
    y_latency: int = 1  # projection accumulator -> y (round, saturate) before y_t can broadcast
    weights_on_chip: bool = True  # False: entries stream from external memory every frame
    memory_gbytes_per_s: float = 12.8  # external memory bandwidth shared by all channels
    overlap_input: bool = True  # broadcast W_x x_{t+1} while step t's element-wise stage runs


@dataclass(frozen=True)
class Config:
    """The whole configuration tree."""

    preset: str = "default"
    synth: SynthConfig = field(default_factory=SynthConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    prune: PruneConfig = field(default_factory=PruneConfig)
    quant: QuantConfig = field(default_factory=QuantConfig)
    hardware: HardwareConfig = field(default_factory=HardwareConfig)

    @classmethod
    def load(cls, path: str | Path | None = None, *, preset: str | None = None,
             overrides: list[str] | None = None) -> "Config":
        """Preset (or ``default``), then the TOML file at ``path``, then ``section.key=value`` overrides."""
        data: dict[str, Any] = {}
        name = preset or "default"
        data = _merge(data, _read_preset(name))
        data["preset"] = name
        if path is not None:
            data = _merge(data, _read_toml(Path(path)))
        for item in overrides or []:
            data = _merge(data, _parse_override(item))
        return with_loss_outputs(from_dict(cls, data))

    @classmethod
    def from_saved(cls, data: dict[str, Any], overrides: list[str] | None = None,
                   path: str | Path | None = None) -> "Config":
        """A config stored in a checkpoint or report (``to_dict``), then the TOML file at ``path``
        (e.g. ``ese tune``'s best.toml), then ``section.key=value`` overrides."""
        if path is not None:
            data = _merge(data, _read_toml(Path(path)))
        for item in overrides or []:
            data = _merge(data, _parse_override(item))
        return with_loss_outputs(from_dict(cls, data))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PRESETS = ("default", "paper", "tiny")
LOSSES = ("ce", "ctc")
PHONE_CLASSES = 48  # the training phone set (ese.data.phones.PHONES_48)
CTC_CLASSES = PHONE_CLASSES + 1  # a CTC model's outputs: the 48 phones, then the blank


def with_loss_outputs(cfg: Config) -> Config:
    """``cfg`` with ``model.num_classes`` matching ``train.loss``: a CTC model has one more output
    (the blank, last), so ``train.loss=ctc`` turns the phone set's 48 into 49. A 49-output model
    trained with cross-entropy, or another class count with CTC, is a ConfigError."""
    loss, n = cfg.train.loss, cfg.model.num_classes
    if loss not in LOSSES:
        raise ConfigError(f"train.loss must be one of {', '.join(LOSSES)}, not {loss!r}")
    if loss == "ctc" and n == PHONE_CLASSES:
        return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, num_classes=CTC_CLASSES))
    if loss == "ctc" and n != CTC_CLASSES:
        raise ConfigError(f"train.loss=ctc needs model.num_classes {PHONE_CLASSES} (the phone set; the "
                          f"blank is added) or {CTC_CLASSES}, not {n}")
    if loss == "ce" and n == CTC_CLASSES:
        raise ConfigError(f"model.num_classes {CTC_CLASSES} is a CTC model's output layer (48 phones + blank); "
                          "set train.loss=ctc or model.num_classes=48")
    return cfg


def _read_preset(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    text = resources.files("ese.presets").joinpath(f"{name}.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from None


def _parse_override(item: str) -> dict[str, Any]:
    key, sep, raw = item.partition("=")
    if not sep or "." not in key:
        raise ConfigError(f"override {item!r} must look like section.key=value, e.g. train.lr=1e-3")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # bare words are strings: model.cmvn=utterance
    out: dict[str, Any] = {}
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Build dataclass ``cls`` from nested dicts, rejecting unknown keys and wrong types."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            raise ConfigError(f"unknown setting {key!r} in {cls.__name__}; known: {', '.join(fields)}")
        default = getattr(cls(), key) if _has_defaults(cls) else None
        if dataclasses.is_dataclass(default):
            if not isinstance(value, dict):
                raise ConfigError(f"{key!r} must be a table of settings, not {value!r}")
            kwargs[key] = from_dict(type(default), value)
        else:
            kwargs[key] = _coerce(cls.__name__, key, value, default)
    return cls(**kwargs)


def _has_defaults(cls: type) -> bool:
    return all(f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
               for f in dataclasses.fields(cls))


def _coerce(owner: str, key: str, value: Any, default: Any) -> Any:
    if default is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{owner}.{key} must be true or false, not {value!r}")
        return value
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{owner}.{key} must be a number, not {value!r}")
        if isinstance(default, int) and not isinstance(value, int):
            raise ConfigError(f"{owner}.{key} must be an integer, not {value!r}")
        return type(default)(value)
    if isinstance(default, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{owner}.{key} must be a list, not {value!r}")
        return tuple(value)
    if isinstance(default, str) and not isinstance(value, str):
        raise ConfigError(f"{owner}.{key} must be a string, not {value!r}")
    return value
