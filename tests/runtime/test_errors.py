"""Malformed models, images and inputs are refused with EngineError (an EseError)."""

from __future__ import annotations

import numpy as np
import pytest
from runtime_models import tiny_float_model, tiny_qmodel

from ese.errors import EseError
from ese.runtime import Engine, EngineError
from ese.runtime.decode import check_engine


@pytest.fixture(scope="module")
def engines():
    return Engine.from_model(tiny_float_model(layers=1)), Engine.from_qmodel(tiny_qmodel())


def test_bad_frames_are_refused(engines):
    flt, fix = engines
    rec = flt.recognizer(2)
    with pytest.raises(EngineError, match=r"expects 7 features per frame"):
        rec.push(np.zeros((2, 6), np.float32))
    with pytest.raises(EngineError, match=r"this recognizer takes \(2, 7\)"):
        rec.push(np.zeros((3, 7), np.float32))
    with pytest.raises(EngineError, match=r"NaN or inf"):
        rec.push(np.full((2, 7), np.nan, np.float32))
    with pytest.raises(EngineError, match=r"must be numbers"):
        flt.posteriors(np.array([["a"] * 7]))
    with pytest.raises(EngineError, match=r"must be integers"):
        fix.recognizer(1).step_layers(np.zeros((1, 5), np.float32))
    with pytest.raises(EngineError, match=r"outside"):
        fix.recognizer(1).step_layers(np.full((1, 5), 1 << 20))
    with pytest.raises(EngineError, match=r"utterance 1 has shape"):
        fix.run_layers([np.zeros((3, 5), np.int64), np.zeros((3, 4), np.int64)])


def test_bad_arguments_are_refused(engines):
    flt, _ = engines
    with pytest.raises(EngineError, match=r"streams must be a positive integer, not 0"):
        flt.recognizer(0)
    with pytest.raises(EngineError, match=r"stream 5 does not exist"):
        flt.recognizer(2).reset(5)
    with pytest.raises(EngineError, match=r"mode must be 'float' or 'fixed'"):
        Engine.from_qmodel(tiny_qmodel(), "half")
    with pytest.raises(EngineError, match=r"--engine must be one of torch, ese-cpu"):
        check_engine("gpu")
    assert issubclass(EngineError, EseError)


def test_unrunnable_models_are_refused():
    import dataclasses
    qm = tiny_qmodel()
    wide = dataclasses.replace(qm, quant=dataclasses.replace(qm.quant, weight_bits=20))
    with pytest.raises(EngineError, match=r"at most 16 bits"):
        Engine.from_qmodel(wide)
    with pytest.raises(EngineError, match=r"16-bit indices"):
        Engine.from_float([{"w_x": np.ones((4, 70000), np.float32), "w_r": np.ones((4, 1)),
                            "bias": np.zeros(4), "peephole": None, "w_ym": np.ones((1, 1))}],
                          np.ones((2, 1)), np.zeros(2))


def test_malformed_files_are_refused(tmp_path):
    bad = tmp_path / "bad.qnpz"
    bad.write_bytes(b"not a zip at all")
    with pytest.raises(EseError, match=r"unreadable or truncated"):
        Engine.load(bad)
    with pytest.raises(EngineError, match=r"runs in float mode only"):
        Engine.load(tmp_path / "model.pt", mode="fixed")


def test_malformed_image_is_refused(tmp_path):
    from ese.compiler.image import image_bytes
    from ese.compiler.program import compile_qmodel
    data = bytearray(image_bytes(compile_qmodel(tiny_qmodel())))
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    (tmp_path / "bad.ese").write_bytes(bytes(data))
    (tmp_path / "short.ese").write_bytes(bytes(data[:40]))
    for name in ("bad.ese", "short.ese"):
        with pytest.raises(EseError):
            Engine.load(tmp_path / name)
