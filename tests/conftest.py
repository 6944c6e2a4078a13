"""Fixtures shared by the report test modules: the one rendered fixture report (`report_fixture`)."""

from __future__ import annotations

import pytest

from report_fixture import shared_report


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """The fixture output directory's rendered report (built once per session)."""
    return shared_report(tmp_path_factory)


@pytest.fixture(scope="module")
def page(rendered):
    """The rendered report's HTML."""
    return rendered.report.read_text(encoding="utf-8")
