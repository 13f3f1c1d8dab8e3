"""``ese import`` from PyTorch state dicts: nn.LSTM (1 and 2+ layers, with and without
proj_size, with and without bias) + nn.Linear -> an ese checkpoint with equal outputs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from cli_inprocess import ese
from torch import nn

from ese.config import Config
from ese.data.phones import PHONES_48
from ese.errors import InteropError
from ese.interop.build import import_model
from ese.model.checkpoint import load_checkpoint

D = 153  # the default feature recipe's dimension: no --set needed


class Acoustic(nn.Module):
    """A model as a user would have written it: nn.LSTM then a linear layer over 48 phones."""

    def __init__(self, layers: int, hidden: int, proj: int, bias: bool = True, classes: int = 48) -> None:
        super().__init__()
        self.lstm = nn.LSTM(D, hidden, num_layers=layers, proj_size=proj, bias=bias, batch_first=True)
        self.fc = nn.Linear(proj or hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.lstm(x)[0])


def _save(tmp: Path, module: nn.Module, name: str = "src.pt") -> Path:
    path = tmp / name
    torch.save(module.state_dict(), path)
    return path


def _randomise(module: nn.Module) -> nn.Module:
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-0.4, 0.4)  # wider than the default init: saturating gates are exercised too
    return module.eval()


@pytest.mark.parametrize("layers,hidden,proj,bias", [(1, 24, 0, True), (1, 24, 12, True), (2, 24, 0, True),
                                                     (3, 24, 12, True), (2, 20, 8, False)])
def test_import_reproduces_nn_lstm(tmp_path, layers, hidden, proj, bias):
    torch.manual_seed(layers * 100 + proj)
    src = _randomise(Acoustic(layers, hidden, proj, bias))
    report = import_model(_save(tmp_path, src), tmp_path / "m.pt", Config.load())
    assert report["check"]["passed"]
    model, meta = load_checkpoint(tmp_path / "m.pt")
    assert (model.cfg.layers, model.cfg.hidden, model.cfg.proj) == (layers, hidden, proj or hidden)
    assert not model.cfg.peepholes
    # an independent input, not the one the command checked with
    x = torch.randn(3, 57, D, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        want = src(x)
        got, _ = model(x)
    assert torch.allclose(got, want, atol=1e-5), f"ese vs nn.LSTM: max diff {(got - want).abs().max():.3g}"
    assert meta["extra"]["imported"]["check"]["max_abs_diff"] < 1e-5
    assert meta["config"]["features"]["num_mel_bins"] == 50  # the default recipe is recorded


def test_two_lstm_modules_in_a_row(tmp_path):
    class Two(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.LSTM(D, 16, proj_size=8, batch_first=True)
            self.b = nn.LSTM(8, 16, proj_size=8, batch_first=True)
            self.out = nn.Linear(8, 48)

        def forward(self, x):
            return self.out(self.b(self.a(x)[0])[0])

    torch.manual_seed(1)
    src = _randomise(Two())
    import_model(_save(tmp_path, src), tmp_path / "m.pt", Config.load())
    model, _ = load_checkpoint(tmp_path / "m.pt")
    x = torch.randn(1, 30, D)
    with torch.no_grad():
        assert torch.allclose(model(x)[0], src(x), atol=1e-5)


def test_phone_order_is_permuted_into_ours(tmp_path):
    torch.manual_seed(2)
    src = _randomise(Acoustic(1, 16, 8))
    theirs = list(reversed(PHONES_48))
    import_model(_save(tmp_path, src), tmp_path / "m.pt", Config.load(), phones=theirs)
    model, _ = load_checkpoint(tmp_path / "m.pt")
    x = torch.randn(1, 10, D)
    with torch.no_grad():
        got, want = model(x)[0], src(x)
    k = PHONES_48.index("sil")
    assert torch.allclose(got[..., k], want[..., theirs.index("sil")], atol=1e-5)


def test_features_config_sets_the_input_dim(tmp_path):
    class Small(Acoustic):
        def __init__(self) -> None:
            nn.Module.__init__(self)
            self.lstm = nn.LSTM(40 * 3, 16, batch_first=True)
            self.fc = nn.Linear(16, 48)

    src = _save(tmp_path, Small())
    with pytest.raises(InteropError, match=r"takes 120 inputs but the feature config gives 153"):
        import_model(src, tmp_path / "m.pt", Config.load())
    cfg = Config.load(overrides=["features.num_mel_bins=39"])  # 39 mel + energy, x3 = 120
    assert import_model(src, tmp_path / "m.pt", cfg)["features"]["dim"] == 120


@pytest.mark.parametrize("make,message", [
    (lambda: nn.LSTM(D, 8, bidirectional=True), r"'weight_ih_l0_reverse' is the backward half of a bidirectional"),
    (lambda: nn.RNN(D, 8), r"it looks like a plain RNN"),
    (lambda: nn.Linear(D, 48), r"holds no nn.LSTM weights"),
])
def test_unsupported_layouts_are_refused_naming_the_layer(tmp_path, make, message):
    with pytest.raises(InteropError, match=message):
        import_model(_save(tmp_path, make()), tmp_path / "m.pt", Config.load())
    assert not (tmp_path / "m.pt").exists()


def test_sizes_that_do_not_chain_are_refused(tmp_path):
    class Odd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.LSTM(D, 16, batch_first=True)
            self.b = nn.LSTM(16, 32, batch_first=True)
            self.out = nn.Linear(32, 48)

    with pytest.raises(InteropError, match=r"layer 'b.weight_ih_l0' has 32 cells .* one cell count"):
        import_model(_save(tmp_path, Odd()), tmp_path / "m.pt", Config.load())


def test_extra_tensors_and_class_count_are_refused(tmp_path):
    class Norm(Acoustic):
        def __init__(self) -> None:
            super().__init__(1, 16, 0)
            self.norm = nn.LayerNorm(16)

    with pytest.raises(InteropError, match=r"2 candidate|neither part of an nn.LSTM"):
        import_model(_save(tmp_path, Norm()), tmp_path / "m.pt", Config.load())
    with pytest.raises(InteropError, match=r"the output layer has 61 classes"):
        import_model(_save(tmp_path, Acoustic(1, 16, 0, classes=61)), tmp_path / "m.pt", Config.load())


def test_a_pickled_module_is_not_unpickled(tmp_path):
    path = tmp_path / "whole.pt"
    torch.save(Acoustic(1, 8, 0), path)  # the module object, not its state dict
    with pytest.raises(InteropError, match=r"holds pickled Python objects .*state_dict"):
        import_model(path, tmp_path / "m.pt", Config.load())


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ese", *args], capture_output=True, text=True, timeout=300)


def test_cli_bad_files_get_one_line(tmp_path, capsys):
    good = _save(tmp_path, Acoustic(1, 8, 0))
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes(good.read_bytes()[:300])
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    for bad, said in ((truncated, "truncated or damaged"), (text, "it is a text file, not a PyTorch state dict"),
                      (tmp_path / "absent.pt", "does not exist")):
        proc = ese(capsys, "import", str(bad), "--out", str(tmp_path / "m.pt"))
        assert proc.returncode == 1, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and said in lines[0], proc.stderr
    assert not (tmp_path / "m.pt").exists()


@pytest.mark.slow  # a CLI subprocess
def test_cli_import_reports_the_check(tmp_path):
    torch.manual_seed(3)
    src = _save(tmp_path, _randomise(Acoustic(2, 16, 8)))
    proc = _cli("import", str(src), "--out", str(tmp_path / "m.pt"), "--json", str(tmp_path / "r.json"))
    assert proc.returncode == 0, proc.stderr
    assert "check: max |ese - source|" in proc.stdout and ": equal" in proc.stdout
    said = " ".join(proc.stdout.split())  # rich wraps long lines
    assert "50 log-mel bins + energy, 2 delta orders = 153 inputs, speaker CMVN; output delay 3 frames" in said
    import json

    report = json.loads((tmp_path / "r.json").read_text())
    assert report["check"]["passed"] and report["model"]["proj"] == 8


@pytest.mark.parametrize("layers,bias", [(1, True), (2, True), (2, False)])
def test_nn_gru_imports_as_ese_gru_cell(tmp_path, layers, bias):
    """nn.GRU (gate order r, z, n; b_hn inside the reset product) -> ModelConfig.cell = gru."""
    class Gru(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gru = nn.GRU(D, 20, num_layers=layers, bias=bias, batch_first=True)
            self.fc = nn.Linear(20, 48)

        def forward(self, x):
            return self.fc(self.gru(x)[0])

    torch.manual_seed(10 + layers)
    src = _randomise(Gru())
    report = import_model(_save(tmp_path, src), tmp_path / "m.pt", Config.load())
    assert report["model"]["cell"] == "gru" and report["check"]["passed"]
    model, _ = load_checkpoint(tmp_path / "m.pt")
    assert (model.cfg.cell, model.cfg.layers, model.cfg.hidden) == ("gru", layers, 20)
    x = torch.randn(2, 45, D, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        assert torch.allclose(model(x)[0], src(x), atol=1e-5)


def test_a_stack_mixing_gru_and_lstm_is_refused(tmp_path):
    class Mixed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.GRU(D, 16, batch_first=True)
            self.b = nn.LSTM(16, 16, batch_first=True)
            self.out = nn.Linear(16, 48)

    with pytest.raises(InteropError, match=r"layer 'b.weight_ih_l0' is a LSTMP layer, layer 'a.weight_ih_l0' a GRU"):
        import_model(_save(tmp_path, Mixed()), tmp_path / "m.pt", Config.load())
