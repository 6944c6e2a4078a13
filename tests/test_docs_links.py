"""The documentation's relative links lead somewhere, and the README stays short enough to read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 200

# [text](target) and [text](target "title"); images too. Angle-bracketed targets may hold spaces.
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*(<[^>]*>|[^)\s]*)(?:\s+\"[^\"]*\")?\s*\)")
_FENCE = re.compile(r"^\s*(```|~~~)")
_CODE_SPAN = re.compile(r"(`+).*?\1")


def documents() -> list[Path]:
    docs = sorted((ROOT / "docs").rglob("*.md"))
    return [ROOT / "README.md", ROOT / "CHANGELOG.md", *docs]


def relative_links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every relative link outside code blocks and code spans."""
    links, fenced = [], False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        for match in _LINK.finditer(_CODE_SPAN.sub("", line)):
            target = match.group(1).strip("<>").strip()
            if not target or target.startswith("#") or re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target):
                continue  # an anchor in the same file, or a URL (http:, mailto:, …)
            links.append((number, target))
    return links


def broken(path: Path, root: Path = ROOT) -> list[str]:
    """`file:line: target` of every relative link whose file does not exist (anchors are not checked)."""
    out = []
    for number, target in relative_links(path):
        file_part = target.split("#", 1)[0].split("?", 1)[0]
        if not (path.parent / file_part).exists():
            out.append(f"{path.relative_to(root)}:{number}: {target}")
    return out


@pytest.mark.parametrize("path", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_to_an_existing_file(path):
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing"
    missing = broken(path)
    assert not missing, "links to files that do not exist:\n" + "\n".join(missing)


def test_readme_is_at_most_200_lines():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines (at most {README_MAX_LINES})"


def test_the_link_finder_sees_what_it_should(tmp_path):
    doc = tmp_path / "a.md"
    (tmp_path / "b.md").write_text("")
    doc.write_text(
        "[ok](b.md#part) [gone](c.md) [web](https://example.org) [here](#x) `[code](d.md)`\n"
        "```\n[fenced](e.md)\n```\n![image](<f g.png> \"title\")\n",
        encoding="utf-8",
    )
    assert [t for _, t in relative_links(doc)] == ["b.md#part", "c.md", "f g.png"]
    assert broken(doc, tmp_path) == ["a.md:1: c.md", "a.md:5: f g.png"]
