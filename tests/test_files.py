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


def test_a_group_whose_second_rename_fails_keeps_every_previous_file(tmp_path):
    """All or none: the first file of a group used to be replaced already when the second one's rename
    failed (here its target is a directory), leaving a new table beside an old one."""
    from core.errors import Failure
    from core.files import atomic_write_texts

    first, second, third = tmp_path / "metrics.csv", tmp_path / "objectives", tmp_path / "new.csv"
    first.write_text("old metrics")
    second.mkdir()
    with pytest.raises(Failure, match="objectives"):
        atomic_write_texts({first: "new metrics", third: "brand new", second: "new objectives"})
    assert first.read_text() == "old metrics" and not third.exists() and second.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv", "objectives"]  # no temporary left
    atomic_write_texts({first: "new metrics", third: "brand new"})
    assert first.read_text() == "new metrics" and third.read_text() == "brand new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv", "new.csv", "objectives"]
