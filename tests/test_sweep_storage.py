"""Opening a storage that other processes are creating at the same moment, the study's settings record,
and the data fingerprint: real SQLite databases and real driver errors, in-process and fast. The same
guarantees across processes and on PostgreSQL are tested in test_sweep_cli.py."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import sqlalchemy
from optuna.exceptions import StorageInternalError
from optuna.study import StudyDirection

from core.config import config_from_dict
from core.errors import UserError
from planner.sweep import (
    S_RUN_HASH, Ledger, StorageSpec, check_run_hash, is_creation_race, open_ledger, open_storage, resolve_storage,
    retry_creation_race, run_config_hash,
)
from trainers.data import Pair, build_language_data, data_fingerprint


def make_cfg(tmp_path, **train):
    return config_from_dict({"experiment": "t", "output_dir": str(tmp_path / "out"), "languages": ["ar"],
                             "train": train})


def sqlite_error(tmp_path, *statements: str) -> Exception:
    """The error SQLAlchemy raises for the last of these statements on a real SQLite database."""
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'errors.db'}")
    with engine.begin() as conn:
        for statement in statements[:-1]:
            conn.exec_driver_sql(statement)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(statements[-1])
    except Exception as err:
        return err
    finally:
        engine.dispose()
    raise AssertionError("the statement did not fail")


def test_what_a_concurrent_creator_causes_is_told_apart_from_real_errors(tmp_path):
    unique = sqlite_error(tmp_path, "CREATE TABLE v (n TEXT PRIMARY KEY)", "INSERT INTO v VALUES ('1')",
                          "INSERT INTO v VALUES ('1')")
    exists = sqlite_error(tmp_path, "CREATE TABLE w (n TEXT)", "CREATE TABLE w (n TEXT)")
    missing = sqlite_error(tmp_path, "SELECT * FROM no_such_table")
    assert is_creation_race(unique) and is_creation_race(exists)
    assert not is_creation_race(missing) and not is_creation_race(ValueError("bad url"))
    try:  # optuna wraps errors inside its sessions; the cause still counts
        raise StorageInternalError("commit failed") from exists
    except StorageInternalError as wrapped:
        assert is_creation_race(wrapped)


def test_a_race_is_retried_and_anything_else_is_not(tmp_path):
    race = sqlite_error(tmp_path, "CREATE TABLE w (n TEXT)", "CREATE TABLE w (n TEXT)")
    attempts = []

    def twice_then_ok():
        attempts.append(1)
        if len(attempts) < 3:
            raise race
        return "opened"

    assert retry_creation_race(twice_then_ok, "test") == "opened" and len(attempts) == 3

    def broken():
        attempts.append(1)
        raise sqlalchemy.exc.ArgumentError("Could not parse the URL")

    attempts.clear()
    with pytest.raises(sqlalchemy.exc.ArgumentError):
        retry_creation_race(broken, "test")
    assert len(attempts) == 1  # a real error is not retried

    def always_racing():
        raise race

    started = time.monotonic()
    with pytest.raises(sqlalchemy.exc.OperationalError):
        retry_creation_race(always_racing, "test", budget_s=0.3)  # …and a race not forever
    assert time.monotonic() - started < 3


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


def _study_without_settings(tmp_path) -> tuple[Ledger, object, StorageSpec]:
    cfg = make_cfg(tmp_path)
    spec = resolve_storage(cfg)
    storage = open_storage(spec, create=True)
    study_id = storage.create_new_study([StudyDirection.MINIMIZE], study_name="t")
    return Ledger(storage, study_id, "t"), cfg, spec


def test_only_the_creator_records_the_settings_and_joiners_wait_for_it(tmp_path):
    # A joiner that opens the study between its creation and the creator's record waits for the record…
    ledger, cfg, spec = _study_without_settings(tmp_path)
    creator = threading.Timer(0.3, ledger.storage.set_study_user_attr, (ledger.study_id, S_RUN_HASH, "other-hash"))
    creator.start()
    with pytest.raises(UserError, match="different data/model/train"):  # …and compares against it
        check_run_hash(ledger, cfg, spec, created=False, wait_s=10)
    creator.join()
    assert ledger.storage.get_study_user_attrs(ledger.study_id)[S_RUN_HASH] == "other-hash"  # not overwritten


def test_a_study_left_without_settings_gets_them_from_the_next_sweep(tmp_path):
    ledger, cfg, spec = _study_without_settings(tmp_path)
    check_run_hash(ledger, cfg, spec, created=False, wait_s=0.1)  # the creator died before recording them
    assert ledger.storage.get_study_user_attrs(ledger.study_id)[S_RUN_HASH] == run_config_hash(cfg)
    open_ledger(cfg, spec, create=True)  # the same settings: accepted
    with pytest.raises(UserError, match="different data/model/train"):
        open_ledger(make_cfg(tmp_path, epochs=3.0), spec, create=True)


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
