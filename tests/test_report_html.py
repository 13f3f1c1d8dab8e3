"""report.html from partial or older artefacts, and the Chromium probe's own ability to fail."""

from __future__ import annotations

import json

import pytest
from chromium_check import probe

from ese.report.html import Figure, Section, render_html
from ese.run_report import ReportError, write_html_report


def test_partial_report_gets_a_note_not_a_crash(tmp_path):
    (tmp_path / "report.json").write_text(json.dumps({
        "preset": "tiny", "per": {"dev": {"per": 30.0, "sub": 1, "del": 2, "ins": 3, "n_ref": 10, "frame_acc": 80.0}},
        "training": {"best_epoch": 2, "history": [{"epoch": 1, "train_loss": 2.0, "dev_loss": 2.1, "dev_frame_acc": 40.0},
                                                  {"epoch": 2, "train_loss": 1.0, "dev_loss": 1.2, "dev_frame_acc": 60.0}]},
        "compression": {"density": 0.25},  # an interrupted or older report: keys missing
    }))
    page = write_html_report(tmp_path).read_text(encoding="utf-8")
    assert "<h2>Training: learning curve</h2>" in page and "data:image/png;base64," in page
    assert "<h2>PER by stage</h2>" in page and "incomplete (KeyError(&#x27;per&#x27;))" in page
    assert "<h2>Pruning" not in page  # a stage that did not run is left out


def test_no_report_json_is_one_error(tmp_path):
    with pytest.raises(ReportError, match=r"has no report.json: run `ese run --workdir"):
        write_html_report(tmp_path)
    (tmp_path / "report.json").write_text("{truncated")
    with pytest.raises(ReportError, match=r"is not valid JSON"):
        write_html_report(tmp_path)


def test_the_probe_sees_a_broken_image(tmp_path):
    page = tmp_path / "p.html"
    page.write_text(render_html("t", "s", [Section("s", "s", figures=[Figure("bad", b"\x89PNG not really")])]))
    result = probe(page, tmp_path)
    assert result["images"] == 1 and result["broken"] == ["bad"]
    assert any("failed to load <img> bad" in e for e in result["errors"])
