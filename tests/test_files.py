"""The one atomic-write helper every stage uses."""

from __future__ import annotations

import pytest

from core.errors import Failure
from core.files import atomic_write_text


def test_writes_text_exactly_and_creates_parents(tmp_path):
    path = atomic_write_text(tmp_path / "a" / "b.csv", "x,y\r\n1,2\n")
    assert path.read_bytes() == b"x,y\r\n1,2\n"  # line endings are kept as given
    assert [p.name for p in path.parent.iterdir()] == ["b.csv"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = atomic_write_text(tmp_path / "runs.csv", "old\n")

    def fail(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("core.files.os.fsync", fail)
    with pytest.raises(Failure, match="disk full"):  # one paragraph naming the file, exit code 1
        atomic_write_text(path, "new\n")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["runs.csv"]
