"""Opening a storage, the study's settings record, and the data fingerprint: real SQLite databases and real
driver errors, in-process and fast. Sweeps creating one storage at the same moment are tested across
processes in test_sweep.py (the preparation lock) and test_sweep_cli.py (SQLite, journal, PostgreSQL)."""

from __future__ import annotations

import socket
import time

import optuna
import pytest

from core.config import config_from_dict
from core.errors import UserError
from planner.sweep.identity import S_RUN_HASH, run_config_hash
from planner.sweep.storage import StorageSpec, open_storage, resolve_storage
from planner.sweep.ledger import open_ledger
from trainers.data import Pair, build_language_data, data_fingerprint


def make_cfg(tmp_path, **train):
    return config_from_dict({"experiment": "t", "output_dir": str(tmp_path / "out"), "languages": ["ar"],
                             "train": train})


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("url, words", [
    (f"postgresql+psycopg2://me:hunter2@127.0.0.1:{_closed_port()}/sweeps", "Connection refused"),
    ("mysql+pymysql://me:hunter2@127.0.0.1/sweeps", "needs the Python package 'pymysql'"),
    ("nosuchdb://me:hunter2@host/sweeps", "Cannot open the sweep storage"),
])
def test_a_storage_that_cannot_be_opened_is_a_user_error_at_once(url, words):
    started = time.monotonic()
    with pytest.raises(UserError) as caught:
        open_storage(StorageSpec("rdb", url), create=True)
    message = str(caught.value)
    assert words in message and "hunter2" not in message
    assert time.monotonic() - started < 10  # not mistaken for a concurrent creator and retried


@pytest.mark.parametrize("name", ["sweep.log", "sweep.db"])
def test_a_storage_path_that_cannot_be_written_is_a_user_error(tmp_path, name):
    (tmp_path / "a-file").write_text("not a directory")
    cfg = make_cfg(tmp_path)
    with pytest.raises(UserError, match="Cannot open the sweep storage"):
        open_storage(resolve_storage(cfg, str(tmp_path / "a-file" / name)), create=True)


def test_a_study_left_without_settings_gets_them_from_the_next_sweep(tmp_path):
    cfg = make_cfg(tmp_path)
    spec = resolve_storage(cfg)
    optuna.create_study(study_name="t", storage=open_storage(spec, create=True))  # e.g. its creator died
    ledger = open_ledger(cfg, spec, create=True)
    assert ledger.study.user_attrs[S_RUN_HASH] == run_config_hash(cfg)
    open_ledger(cfg, spec, create=True)  # the same settings: accepted
    with pytest.raises(UserError, match="different data/model/train"):
        open_ledger(make_cfg(tmp_path, epochs=3.0), spec, create=True)
    assert open_ledger(cfg, spec, create=False).study.user_attrs[S_RUN_HASH] == run_config_hash(cfg)  # not overwritten


def _language(raw, test_size=2):
    return build_language_data("el", "Greek", raw, test_size=test_size, split_seed=0, max_chars=300)


def test_the_data_fingerprint_follows_the_pairs_not_the_file():
    raw = [Pair(f"Sentence {i}.", f"Πρόταση {i}.") for i in range(8)]
    base = data_fingerprint(_language(raw))
    assert data_fingerprint(_language(list(reversed(raw)))) == base  # another line order, same data
    assert data_fingerprint(_language([Pair(f"  {p.source}", f"{p.target}  ") for p in raw])) == base  # spacing
    edited = [*raw[:-1], Pair(raw[-1].source, raw[-1].target + " (corrected)")]
    assert data_fingerprint(_language(edited)) != base  # one pair edited
    assert data_fingerprint(_language(raw[:-1])) != base  # one pair removed
    assert data_fingerprint(_language(raw, test_size=3)) != base  # a pair moved from training to test
