"""Opening model files by content; what each carries; old files and foreign files (issue 14)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from deploy_models import strip_checkpoint, strip_qmodel

from ese.artefact import ArtefactError, artefact_kind, open_artefact
from ese.compiler.image import load_program
from ese.compress.qmodel import load_qmodel
from ese.complete import complete_artefact
from ese.config import FeatureConfig


@pytest.mark.parametrize("kind, key", [("checkpoint", "pt"), ("qmodel", "qnpz"), ("image", "ese")])
def test_kind_comes_from_the_content_not_the_name(tmp_path, tiny_models, kind, key):
    renamed = tmp_path / "model.bin"
    shutil.copyfile(tiny_models[key], renamed)
    assert artefact_kind(renamed) == kind
    art = open_artefact(renamed)
    assert art.kind == kind and not art.missing()
    assert art.features == FeatureConfig() and art.phones and art.output_delay == 3
    assert art.normalisation.kind == "running" and art.normalisation.dim == 153
    assert art.spec_version == (None if kind == "checkpoint" else 1)
    assert art.engines == (("torch", "ese-cpu") if kind == "checkpoint" else ("ese-cpu",))


def test_the_three_files_carry_the_same_metadata(tiny_models):
    arts = [open_artefact(tiny_models[k]) for k in ("pt", "qnpz", "ese")]
    for a in arts[1:]:
        assert (a.features, a.normalisation, a.phones, a.output_delay) == \
               (arts[0].features, arts[0].normalisation, arts[0].phones, arts[0].output_delay)


def test_the_image_decodes_to_the_fixed_point_model(tiny_models):
    qm, prog = load_qmodel(tiny_models["qnpz"]), load_program(tiny_models["ese"])
    assert prog.features == qm.features and prog.normalisation == qm.normalisation
    back = prog.to_qmodel()
    assert all(np.array_equal(a.w_x, b.w_x) for a, b in zip(back.layers, qm.layers))


@pytest.mark.parametrize("content, expect", [
    (b"", "it is an empty file"),
    (b"hello world\n", "it is a text file"),
    (b"PK\x03\x04garbage", "truncated or damaged"),
    (b"\x89PNG\r\n\x1a\n....", "it is a PNG image"),
])
def test_foreign_files_are_named(tmp_path, content, expect):
    bad = tmp_path / "model.qnpz"
    bad.write_bytes(content)
    with pytest.raises(ArtefactError) as err:
        open_artefact(bad)
    assert str(err.value) == (f"{bad} is not a model ese can open ({expect}); expected a checkpoint (.pt), "
                              "a fixed-point model (.qnpz) or a program image (.ese)")


@pytest.mark.parametrize("key", ["pt", "qnpz", "ese"])
def test_truncated_files_are_refused_in_one_line(tmp_path, tiny_models, key):
    data = tiny_models[key].read_bytes()
    bad = tmp_path / f"cut.{key}"
    bad.write_bytes(data[:len(data) // 2])
    with pytest.raises(Exception) as err:  # the kind's own error type (ArtefactError, ImageError, ...)
        open_artefact(bad)
    assert "\n" not in str(err.value) and str(bad) in str(err.value)
    assert "truncated" in str(err.value) or "corrupt" in str(err.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ArtefactError, match=r"model '.*nope\.pt' does not exist"):
        open_artefact(tmp_path / "nope.pt")
    with pytest.raises(ArtefactError, match="is a directory, not a model file"):
        open_artefact(tmp_path)


def test_an_old_fixed_point_file_says_what_it_lacks_and_how_to_complete_it(tmp_path, tiny_models, tone_corpus):
    old = strip_qmodel(tiny_models["qnpz"], tmp_path / "old.qnpz")
    art = open_artefact(old)
    assert art.missing() == ["the feature configuration", "the normalisation statistics (CMVN mean and std)"]
    with pytest.raises(ArtefactError) as err:
        art.require()
    assert str(err.value) == (
        f"{old} (a fixed-point model (.qnpz)) lacks the feature configuration and the normalisation statistics "
        "(CMVN mean and std), which transcription needs (it was written before ese recorded them); make a "
        f"complete copy with ese complete {old} --from CHECKPOINT.pt --corpus CORPUS --out COMPLETE.qnpz "
        "(CHECKPOINT: the checkpoint it was made from; CORPUS: the corpus it was trained on)")
    # the checkpoint carries both: --from alone completes it, weights untouched (checked inside)
    report = complete_artefact(old, tmp_path / "new.qnpz", source=tiny_models["pt"])
    assert report["filled"] == {"features": str(tiny_models["pt"]), "normalisation": str(tiny_models["pt"])}
    assert open_artefact(tmp_path / "new.qnpz").normalisation == open_artefact(tiny_models["qnpz"]).normalisation


def test_an_old_checkpoint_is_completed_from_its_corpus(tmp_path, tiny_models, tone_corpus):
    old = strip_checkpoint(tiny_models["pt"], tmp_path / "old.pt")
    assert open_artefact(old).missing() == ["the normalisation statistics (CMVN mean and std)"]
    with pytest.raises(ArtefactError, match="no --from file was given; pass --corpus"):
        complete_artefact(old, tmp_path / "new.pt")
    report = complete_artefact(old, tmp_path / "new.pt", corpus=tone_corpus, cache_dir=tmp_path / "f")
    assert list(report["filled"]) == ["normalisation"]
    # measured on the same train split as training did: the same statistics
    assert open_artefact(tmp_path / "new.pt").normalisation == open_artefact(tiny_models["pt"]).normalisation


def test_complete_refuses_a_source_of_another_network(tmp_path, tiny_models):
    from ese.config import Config, ModelConfig
    from ese.model.checkpoint import save_checkpoint
    from ese.model.lstmp import AcousticModel

    other = tmp_path / "other.pt"
    save_checkpoint(other, AcousticModel(ModelConfig(hidden=8, proj=4)), config=Config.load(preset="tiny").to_dict())
    with pytest.raises(ArtefactError, match="holds another network than"):
        complete_artefact(tiny_models["qnpz"], tmp_path / "x.qnpz", source=other)


def test_engine_that_cannot_run_it_is_one_line(tiny_models):
    art = open_artefact(tiny_models["qnpz"])
    with pytest.raises(ArtefactError) as err:
        art.check_engine("torch")
    assert str(err.value) == (f"{tiny_models['qnpz']} is a fixed-point model (.qnpz): the torch engine cannot "
                              "run it (it runs on ese-cpu); drop --engine or use ese-cpu")
    with pytest.raises(ArtefactError, match="--engine must be one of ese-cpu, torch, not 'gpu'"):
        art.check_engine("gpu")


def test_a_model_trained_without_cmvn_needs_no_statistics(tmp_path, tiny_models):
    """The one fill without asking: features.cmvn = none means there is nothing to normalise."""
    from ese.model.checkpoint import read_checkpoint, write_checked
    state = read_checkpoint(tiny_models["pt"])
    state.pop("normalisation")
    state["config"]["features"]["cmvn"] = "none"
    write_checked(tmp_path / "raw.pt", state)
    art = open_artefact(tmp_path / "raw.pt")
    assert not art.missing() and art.normalisation.kind == "none"


def test_an_old_image_is_completed_and_keeps_its_sections(tmp_path, tiny_models):
    from ese.compiler.image import program_sections, save_program
    prog = load_program(tiny_models["ese"])
    prog.features, prog.normalisation = None, None
    save_program(tmp_path / "old.ese", prog)
    assert open_artefact(tmp_path / "old.ese").missing()[0] == "the feature configuration"
    complete_artefact(tmp_path / "old.ese", tmp_path / "new.ese", source=tiny_models["pt"])
    new = load_program(tmp_path / "new.ese")
    assert new.features == FeatureConfig() and new.normalisation == open_artefact(tiny_models["pt"]).normalisation
    old_sec, new_sec = program_sections(prog), program_sections(new)
    assert old_sec.keys() == new_sec.keys() and all(np.array_equal(old_sec[k], new_sec[k]) for k in old_sec)


def test_every_opener_reads_the_content_not_the_name(tmp_path, tiny_models):
    """Engine.load and the accelerator's load_program ask ese.filekind.model_kind too."""
    from ese.accel.retarget import load_program as load_for_accel
    from ese.filekind import model_kind
    from ese.runtime.engine import Engine

    for key, kind in (("pt", "checkpoint"), ("qnpz", "qmodel"), ("ese", "image")):
        renamed = tmp_path / f"{key}.model"
        shutil.copyfile(tiny_models[key], renamed)
        assert model_kind(renamed) == kind
        assert Engine.load(renamed, threads=1).mode == ("float" if kind == "checkpoint" else "fixed")
    assert load_for_accel(tmp_path / "ese.model").n_pes == 4
    assert load_for_accel(tmp_path / "qnpz.model").layers
    with pytest.raises(Exception, match="it is a float checkpoint \\(.pt\\): quantize it first"):
        load_for_accel(tmp_path / "pt.model")
