"""The report in a real browser (headless Chromium): images decode, no page errors. Skipped without Chromium."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from report_fixture import shared_report, synthetic_runs, true_laws
from reports import render_report

_SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "report_browser_check.py"
_spec = importlib.util.spec_from_file_location("report_browser_check", _SCRIPT)
browser = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = browser  # dataclasses look their module up while the script is loaded
_spec.loader.exec_module(browser)

pytestmark = pytest.mark.skipif(browser.find_chromium() is None, reason="Chromium is not installed")


def test_report_renders_cleanly_in_chromium(tmp_path, tmp_path_factory):
    report = shared_report(tmp_path_factory).report
    result = browser.check_report(report, tmp_path / "page.png")
    assert result.images == 8 and result.broken == []
    assert result.errors == [] and result.console == []
    assert not result.overflowing  # nothing wider than the window
    assert result.screenshot.stat().st_size > 50_000


def test_the_probe_catches_a_broken_image(tmp_path):
    """The check must be able to fail: a corrupted data URI is reported as broken."""
    synthetic_runs(true_laws(["de", "fr"])).to_csv(tmp_path / "runs.csv", index=False)
    report = render_report(tmp_path).report
    html = report.read_text(encoding="utf-8")
    broken = html.replace("data:image/png;base64,iVBOR", "data:image/png;base64,AAAAA", 1)
    assert broken != html
    report.write_text(broken, encoding="utf-8")
    result = browser.check_report(report)
    assert len(result.broken) == 1 and not result.ok
