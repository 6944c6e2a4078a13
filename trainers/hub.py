"""The Hugging Face Hub as a source of base models (`model.name: org/name` + `model.revision`) and of parallel
data (`data.source: hf:org/name` + `data.dataset_config`, `data.split`), both read through the local caches
that `huggingface_hub` and `datasets` keep, so that a sweep runs offline once they are filled.

With HF_HUB_OFFLINE=1 (HF_DATASETS_OFFLINE=1 for datasets) nothing is ever fetched: files that are not in
the cache are a UserError naming the cache directory and the one command that fills it. Online, the
libraries themselves decide what to fetch (a moving branch such as `main` is checked for a new commit).
A model's resolved commit (the snapshot directory's name) is its identity: `hub_commit` reports it so a run
can record which weights `main` meant at the time.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from core.errors import UserError, first_line

HUB_DATASET_PREFIX = "hf:"
# org/name as the Hub spells repository ids: letters, digits, '-', '_', '.' on each side of one slash.
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")


def is_hub_id(name: str) -> bool:
    """Whether `model.name` reads as a Hub id. A local directory of that name wins (checked by the caller
    first), so `models/mine` stays a path when it exists."""
    return bool(_HUB_ID.fullmatch(name)) and ".." not in name and not name.endswith(".gguf")


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _cache_dir() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def download_command(repo_id: str, revision: str, repo_type: str = "model") -> str:
    kind = "" if repo_type == "model" else f" --repo-type {repo_type}"
    return f"hf download {repo_id}{kind} --revision {revision}"


def hub_checkpoint(repo_id: str, revision: str = "main") -> Path:
    """The snapshot directory of `repo_id` at `revision` in the HF cache (fetched only when online and
    missing). Its name is the resolved commit hash."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    try:
        path = Path(snapshot_download(repo_id, revision=revision, local_files_only=_offline()))
    except (LocalEntryNotFoundError, OfflineModeIsEnabled, FileNotFoundError) as err:
        raise UserError(
            f"model.name {repo_id!r} (revision {revision!r}) is not in the HF cache at {_cache_dir()}"
            + (" and HF_HUB_OFFLINE is set" if _offline() else f" and could not be fetched ({first_line(err)})")
            + ".",
            f"Run once online: `{download_command(repo_id, revision)}` (or `huggingface-cli download ...`), "
            "or point HF_HOME / HF_HUB_CACHE at the cache that holds it. (As a local directory, "
            f"{repo_id!r} does not exist.)",
        ) from None
    except HfHubHTTPError as err:  # a repository or revision the Hub does not have, or a gated one
        raise UserError(f"model.name {repo_id!r} revision {revision!r}: {first_line(err)}",
                        "Check the id and model.revision (a branch, tag or commit hash) on the Hub.") from None
    if not (path / "config.json").is_file():
        raise UserError(
            f"The HF cache's snapshot of {repo_id!r} at {revision!r} ({path}) holds no config.json: it is not a "
            "transformers checkpoint, or only some of its files were downloaded.",
            f"Download the whole repository: `{download_command(repo_id, revision)}`.",
        )
    return path


def hub_commit(repo_id: str, revision: str = "main") -> str:
    """The commit hash `revision` resolves to in the cache (the snapshot directory's name)."""
    return hub_checkpoint(repo_id, revision).name


# ------------------------------------------------------------------------------------------ datasets


def is_hub_dataset(source: str) -> bool:
    return source.startswith(HUB_DATASET_PREFIX)


def hub_dataset_name(source: str) -> str:
    name = source[len(HUB_DATASET_PREFIX):]
    if not _HUB_ID.fullmatch(name) and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise UserError(f"data.source {source!r} does not name a dataset: after 'hf:' comes 'org/name'.",
                        "Write e.g. data.source: hf:org/name (with data.dataset_config and data.split as needed).")
    return name


def hub_dataset_frame(source: str, config: str | None, split: str | None) -> pd.DataFrame:
    """One table of the dataset's rows: the split asked for, or every split pooled in name order (the
    planner cuts its own test split)."""
    import datasets

    name = hub_dataset_name(source)
    what = f"data.source {source!r}" + (f" config {config!r}" if config else "") + (f" split {split!r}" if split else "")
    fetch = ("python -c \"import datasets; datasets.load_dataset("
             + ", ".join(repr(a) for a in (name, config) if a) + (f", split={split!r}" if split else "") + ")\"")
    try:
        loaded = datasets.load_dataset(name, config, split=split)
    except (ConnectionError, FileNotFoundError) as err:  # not cached (offline) or not reachable
        raise UserError(
            f"{what} is not in the local `datasets` cache at {datasets.config.HF_DATASETS_CACHE} ({first_line(err)}).",
            f"Run once online: `{fetch}`, or point HF_HOME / HF_DATASETS_CACHE at the cache that holds it.",
        ) from None
    except ValueError as err:  # a config or split the (cached) dataset does not have
        raise UserError(f"{what}: {first_line(err)}",
                        "Set data.dataset_config and data.split to ones the dataset has.") from None
    except Exception as err:  # the Hub's own errors (not found, gated) have no common base besides this
        raise UserError(f"{what} cannot be loaded: {first_line(err)}", "Check the dataset name.") from None
    return pooled_frame(loaded)


def pooled_frame(loaded) -> pd.DataFrame:
    """A `datasets` Dataset, or a DatasetDict's splits pooled in name order (the planner makes its own test
    split), as one frame with rows numbered from 1. Each split is read alone: `concatenate_datasets` refuses
    splits whose columns differ (one in the `translation` form, another with a column per language)."""
    import datasets

    if isinstance(loaded, datasets.DatasetDict):
        frames = [loaded[name].to_pandas() for name in sorted(loaded)]
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    else:
        frame = loaded.to_pandas()
    frame.index = range(1, len(frame) + 1)
    return frame
