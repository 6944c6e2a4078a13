#!/usr/bin/env python3
"""Rebuild the embedded demo corpus `trainers/demo_data/demo_corpus.jsonl.xz` from LibreOffice's
human translations of its user interface (MPL-2.0; see DATA.md for provenance and licence).

Input: Debian's `libreoffice-l10n-<lang>` packages (.deb files, any recent version). Each holds the
compiled gettext catalogs `usr/lib/libreoffice/program/resource/<locale>/LC_MESSAGES/*.mo`, whose
msgid is the English UI string and msgstr its translation. The .deb is read here in pure Python (an
`ar` archive holding `data.tar.*`), so neither dpkg nor root is needed.

    apt-get download libreoffice-l10n-{ar,de,el,es,fr,hi,ja,ru,tr,vi,zh-cn}   # into DEB_DIR
    python scripts/build_demo_corpus.py DEB_DIR

The output is byte-for-byte reproducible from the same packages: entries are visited in a fixed order
(catalog name, context, English text) and written sorted by language.
"""

from __future__ import annotations

import argparse
import io
import json
import lzma
import re
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import polib

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from trainers.data import DEMO_CORPUS, normalize_text  # noqa: E402  (after the path fix above)

# Our language code -> Debian package suffix (LibreOffice's own locale for Chinese is zh-CN).
PACKAGES = {
    "ar": "ar",
    "de": "de",
    "el": "el",
    "es": "es",
    "fr": "fr",
    "hi": "hi",
    "ja": "ja",
    "ru": "ru",
    "tr": "tr",
    "vi": "vi",
    "zh": "zh-cn",
}
MO_DIR = re.compile(r"usr/lib/libreoffice/program/resource/[^/]+/LC_MESSAGES/([^/]+\.mo)$")

MAX_CHARS = 300
# Single-word entries are menu labels ("Delete", "Value"); two words and more are phrases and
# sentences. Two (not three) keeps Hindi, the smallest catalog, above 4,000 pairs.
MIN_WORDS = 2
MAX_PLACEHOLDERS = 2

# Accelerators (keyboard mnemonics): "~Save", "_Add", "N_ormal", "&File" in English; translations that
# cannot mark a letter of their own script append the key instead: "追加(_A)", "नया (_N)".
APPENDED_ACCELERATOR = re.compile(r"\s*[(（][_~&][^\W_][)）]")
INLINE_ACCELERATOR = {
    "~": re.compile(r"~(?=[^\W_])"),
    "_": re.compile(r"_(?=[^\W_])"),
    "&": re.compile(r"(?<![\w&])&(?=[^\W_])"),  # not "R&D"
}
MARKUP = re.compile(r"<[A-Za-z/!][^>]*>|&(?:[A-Za-z]+|#\d+);")
# %PRODUCTNAME, %1, %s, $(ARG1), $1, $column$, #1: filled in by the program at run time.
PLACEHOLDER = re.compile(r"%[A-Z][A-Z0-9_]*%?|%\d+|%[sdu]|\$\(ARG\d+\)|\$\d+|\$[A-Za-z_]+\$|#\d+")
WORD = re.compile(r"[A-Za-z]+")


def strip_accelerators(text: str) -> str:
    text = APPENDED_ACCELERATOR.sub("", text)
    for mark, pattern in INLINE_ACCELERATOR.items():
        # A mnemonic marks exactly one letter; a string using the character more than once uses it
        # as content (identifiers, "A~B~C").
        if text.count(mark) == 1:
            text = pattern.sub("", text)
    return text


def rejection(source: str, target: str) -> str | None:
    """Why a cleaned, normalised catalog pair is not kept (None: keep it)."""
    if not any(ch.isalpha() for ch in target) or target.casefold() == source.casefold():
        return "untranslated"  # empty, or the English copied in place of a translation
    if MARKUP.search(source) or MARKUP.search(target):
        return "markup"
    if len(PLACEHOLDER.findall(source)) > MAX_PLACEHOLDERS:
        return "placeholder-heavy"
    if len(WORD.findall(PLACEHOLDER.sub(" ", source))) < MIN_WORDS:
        return "fewer than 2 words"  # also catches placeholder-only strings
    if len(source) > MAX_CHARS or len(target) > MAX_CHARS:
        return "too long"
    return None


@dataclass(frozen=True)
class Entry:
    catalog: str
    context: str
    source: str
    target: str
    plural: bool
    fuzzy: bool


def read_deb_member_files(deb: Path, wanted: re.Pattern[str]) -> dict[str, bytes]:
    """Files of a .deb's data archive whose path matches `wanted`, by the pattern's first group."""
    blob = deb.read_bytes()
    if not blob.startswith(b"!<arch>\n"):
        raise SystemExit(f"{deb} is not a Debian package (no ar header)")
    offset, found = 8, {}
    while offset + 60 <= len(blob):
        header = blob[offset : offset + 60]
        name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58])
        body = blob[offset + 60 : offset + 60 + size]
        offset += 60 + size + (size % 2)  # members are 2-byte aligned
        if name.startswith("data.tar.zst"):
            raise SystemExit(f"{deb}: zstd-compressed data is not readable by tarfile; use a .deb with data.tar.xz")
        if name.startswith("data.tar"):
            with tarfile.open(fileobj=io.BytesIO(body), mode="r:*") as tar:
                for member in tar:
                    match = wanted.search(member.name)
                    if member.isfile() and match:
                        found[match.group(1)] = tar.extractfile(member).read()
    return found


def catalog_entries(deb: Path) -> list[Entry]:
    entries = []
    with tempfile.TemporaryDirectory() as tmp:
        for catalog, data in sorted(read_deb_member_files(deb, MO_DIR).items()):
            path = Path(tmp) / catalog
            path.write_bytes(data)
            for e in polib.mofile(str(path)):
                plural, fuzzy = bool(e.msgid_plural), "fuzzy" in e.flags
                entries.append(Entry(catalog, e.msgctxt or "", e.msgid, e.msgstr, plural, fuzzy))
    return sorted(entries, key=lambda e: (e.catalog, e.context, e.source))


def select_pairs(entries: list[Entry]) -> tuple[list[tuple[str, str]], Counter]:
    """Clean and filter one language's catalog entries; the first translation of an English text wins."""
    counts: Counter = Counter()
    kept: dict[str, str] = {}
    for e in entries:
        counts["read"] += 1
        # Plural entries hold several target forms for one English pattern ("%d files"); a catalog
        # compiled from fuzzy entries would carry the flag (msgfmt leaves them out by default).
        if e.plural or e.fuzzy:
            counts["plural or fuzzy"] += 1
            continue
        source = normalize_text(strip_accelerators(e.source))
        target = normalize_text(strip_accelerators(e.target))
        reason = rejection(source, target) or ("duplicate source" if source in kept else None)
        if reason:
            counts[reason] += 1
            continue
        kept[source] = target
        counts["kept"] += 1
    return list(kept.items()), counts


def debian_version(deb: Path) -> str:
    """The version in a package file name: libreoffice-l10n-de_4%3a7.4.7-1_all.deb -> 4:7.4.7-1."""
    return unquote(deb.name.split("_")[1])


def find_debs(deb_dir: Path) -> dict[str, Path]:
    debs = {}
    for code, suffix in PACKAGES.items():
        matches = sorted(deb_dir.glob(f"libreoffice-l10n-{suffix}_*.deb"))
        if not matches:
            raise SystemExit(
                f"no libreoffice-l10n-{suffix}_*.deb in {deb_dir}; run with --download or "
                f"`apt-get download libreoffice-l10n-{suffix}` there"
            )
        debs[code] = matches[-1]
    return debs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("deb_dir", type=Path, help="directory holding the libreoffice-l10n-*.deb files")
    parser.add_argument("--download", action="store_true", help="first fetch the packages with apt-get download")
    parser.add_argument("--output", type=Path, default=DEMO_CORPUS, help="default: the packaged corpus file")
    args = parser.parse_args(argv)
    args.deb_dir.mkdir(parents=True, exist_ok=True)
    if args.download:
        packages = [f"libreoffice-l10n-{suffix}" for suffix in PACKAGES.values()]
        subprocess.run(["apt-get", "download", *packages], cwd=args.deb_dir, check=True)

    lines, table = [], {}
    for code, deb in find_debs(args.deb_dir).items():
        pairs, counts = select_pairs(catalog_entries(deb))
        table[code] = (debian_version(deb), counts)
        lines.extend(json.dumps({"source": s, "target": t, "language": code}, ensure_ascii=False) for s, t in pairs)

    payload = ("\n".join(lines) + "\n").encode("utf-8")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(lzma.compress(payload, preset=9 | lzma.PRESET_EXTREME))

    reasons = sorted({r for _, c in table.values() for r in c} - {"read", "kept"})
    print("| language | package version | catalog entries | kept | " + " | ".join(reasons) + " |")
    print("|---" * (4 + len(reasons)) + "|")
    for code, (name, counts) in table.items():
        cells = [code, name, f"{counts['read']:,}", f"{counts['kept']:,}"] + [f"{counts[r]:,}" for r in reasons]
        print("| " + " | ".join(cells) + " |")
    print(f"\nwrote {len(lines):,} pairs to {args.output.name} ({args.output.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
