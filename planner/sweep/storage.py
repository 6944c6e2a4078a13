"""Where the study lives: resolving `--storage`, and opening it so that many processes may do so at once.

Every `planner sweep` opens (and, the first time, creates) the storage; on a new storage any number of
them may start at the same instant. The first creator's schema, study and settings record then race the
others': SQL storages create tables and stamp the schema version (a second creator hits a unique key or
"already exists"), SQLite may answer "database is locked" to one of two writers that both began deferred
transactions. None of that means the storage is unusable, only that someone else got there first, so
those errors are retried after a short backoff, re-opening from scratch (by then the schema exists and
creation is skipped). Everything else (a wrong URL, a refused password, no permission, a missing
driver) is not retried: it is a user error at once.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import optuna
from optuna.storages import BaseStorage

from core.config import PlannerConfig
from core.errors import Failure, UserError

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_DB_NAME = "sweep.db"
JOURNAL_SUFFIXES = (".log", ".journal")
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
# SQLite waits this long for the write lock before giving up; workers only hold it for milliseconds.
SQLITE_LOCK_TIMEOUT_S = 120
# A concurrent creator finishes its tables in well under a second; retry for much longer than that, with
# jittered exponential backoff so that the retrying processes do not collide again in lockstep.
CREATE_RETRY_SECONDS = 30.0
CREATE_BACKOFF_FIRST_S = 0.05
CREATE_BACKOFF_MAX_S = 2.0

# SQLSTATEs (PostgreSQL) and error numbers (MySQL) of a concurrent creator: unique violation, table/object
# already exists, serialization failure, deadlock; MySQL: table exists, duplicate entry, deadlock, lock wait.
_PG_RACE_CODES = {"23505", "42P07", "42710", "40001", "40P01"}
_MYSQL_RACE_CODES = {1050, 1062, 1213, 1205}
_SQLITE_RACE_TEXT = ("already exists", "database is locked", "unique constraint failed")


@dataclass(frozen=True)
class StorageSpec:
    """Where the study lives. `kind` is 'rdb' (an SQLAlchemy URL) or 'journal' (a file path)."""

    kind: str
    target: str

    @property
    def display(self) -> str:
        """The location with any password masked, for messages."""
        if self.kind == "journal":
            return self.target
        from sqlalchemy.engine import make_url

        return make_url(self.target).render_as_string(hide_password=True)

    @property
    def local_file(self) -> Path | None:
        """The file holding the study when it is an SQLite database or a journal, else None."""
        if self.kind == "journal":
            return Path(self.target)
        if self.target.startswith("sqlite:///"):
            return Path(self.target[len("sqlite:///"):])
        return None


def resolve_storage(cfg: PlannerConfig, override: str | None = None) -> StorageSpec:
    """`--storage` beats `sweep.storage` beats an SQLite file in the output directory.

    Accepted: any SQLAlchemy URL (`sqlite:///…`, `postgresql://…`, `mysql+pymysql://…`), a path ending in
    .log/.journal (an optuna journal file, which machines can share over a network file system), or a
    path ending in .db/.sqlite/.sqlite3 (an SQLite file)."""
    source = "--storage" if override else "sweep.storage"
    value = override or cfg.sweep.storage
    if not value:
        return StorageSpec("rdb", f"sqlite:///{(cfg.out / DEFAULT_DB_NAME).resolve()}")
    if "://" in value:
        if value.startswith("sqlite://") and ":memory:" in value or value.rstrip("/") == "sqlite:":
            raise UserError(
                f"{source} is an in-memory SQLite database ({value}), which worker processes cannot share.",
                "Use an SQLite file (sqlite:///path/sweep.db) or leave it unset for one in the output directory.",
            )
        return StorageSpec("rdb", value)
    if value.endswith(JOURNAL_SUFFIXES):
        return StorageSpec("journal", str(Path(value).resolve()))
    if value.endswith(SQLITE_SUFFIXES):
        return StorageSpec("rdb", f"sqlite:///{Path(value).resolve()}")
    raise UserError(
        f"{source} '{value}' is neither a database URL nor a journal or SQLite file.",
        "Use an SQLAlchemy URL (postgresql://user@host/db, sqlite:///sweep.db), a journal file ending in "
        ".log or .journal, or an SQLite file ending in .db.",
    )


# ------------------------------------------------------------------------------- concurrent creation


def _error_chain(err: BaseException):
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def is_creation_race(err: BaseException) -> bool:
    """Did this error come from another process creating the same storage, study or record at the same
    moment (so that retrying will find it created)? Pure: looks at the error chain only."""
    from sqlalchemy import exc

    for e in _error_chain(err):
        if isinstance(e, exc.IntegrityError):
            return True  # a unique key someone else has just inserted (schema version, study, attribute)
        if not isinstance(e, exc.DBAPIError):
            continue
        orig = e.orig
        if getattr(orig, "pgcode", None) in _PG_RACE_CODES:
            return True
        args = getattr(orig, "args", ())
        if args and args[0] in _MYSQL_RACE_CODES:
            return True
        if type(orig).__module__.startswith("sqlite3") and any(t in str(orig).lower() for t in _SQLITE_RACE_TEXT):
            return True
    return False


def backoff_seconds(attempt: int, rng: random.Random | None = None) -> float:
    """Jittered exponential backoff: attempt 0 waits about CREATE_BACKOFF_FIRST_S, doubling to a cap."""
    base = min(CREATE_BACKOFF_MAX_S, CREATE_BACKOFF_FIRST_S * 2 ** attempt)
    return base * (0.5 + (rng or random).random())


def retry_creation_race(action: Callable[[], T], what: str, budget_s: float = CREATE_RETRY_SECONDS) -> T:
    """Run `action`, retrying it while it fails with a concurrent creator's error (`is_creation_race`) and
    the time budget lasts; any other error, or the last one, propagates unchanged."""
    deadline = time.monotonic() + budget_s
    attempt = 0
    while True:
        try:
            return action()
        except Exception as err:
            wait = backoff_seconds(attempt)
            if not is_creation_race(err) or time.monotonic() + wait > deadline:
                raise
            log.info("%s: another process is creating it too (%s); retrying", what, str(err).splitlines()[0])
            time.sleep(wait)
            attempt += 1


# ---------------------------------------------------------------------------------------------- open


def _serialize_sqlite(engine) -> None:
    """Make every SQLite transaction `BEGIN IMMEDIATE` (the write lock before the first read).

    SQLAlchemy's documented recipe: stop the sqlite3 driver from issuing its own (late) BEGIN and issue
    ours when SQLAlchemy starts a transaction. Connections opened before the hooks existed are dropped."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _driver_must_not_begin(dbapi_connection, _record):
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()


def _open_rdb(spec: StorageSpec) -> BaseStorage:
    is_sqlite = spec.target.startswith("sqlite")
    engine_kwargs = {"connect_args": {"timeout": SQLITE_LOCK_TIMEOUT_S}} if is_sqlite else {}

    def attempt() -> BaseStorage:
        # Creates the tables and stamps the schema version when they are missing: the racy part.
        return optuna.storages.RDBStorage(spec.target, engine_kwargs=engine_kwargs)

    storage = retry_creation_race(attempt, f"opening {spec.display}")
    if is_sqlite:
        _serialize_sqlite(storage.engine)
    return storage


def open_storage(spec: StorageSpec, create: bool) -> BaseStorage:
    """Open the storage; with `create=False` a missing SQLite/journal file is a user error, not a new file."""
    local = spec.local_file
    if local is not None:
        if not create and not local.is_file():
            raise UserError(
                f"No sweep storage at {local}.",
                "Run `planner sweep` first (with the same --config/--storage), or pass the storage it used.",
            )
        if not create and spec.kind == "rdb" and not _is_sweep_sqlite(local):  # read-only: never add tables
            raise UserError(
                f"{local} is not a sweep storage (an SQLite database written by `planner sweep`).",
                "Pass the storage `planner sweep` used with --storage, or run `planner sweep` first.",
            )
        try:
            local.parent.mkdir(parents=True, exist_ok=True)
            if spec.kind == "journal":
                from optuna.storages import JournalStorage

                from planner.sweep.journal import TornTailSafeJournal

                return JournalStorage(TornTailSafeJournal(spec.target))
        except OSError as err:
            raise UserError(
                f"Cannot open the sweep storage {local}: {err.strerror or err} ({err.filename or local}).",
                "Choose a storage path in a directory you may write to.",
            ) from None
        except (ValueError, LookupError, TypeError, AssertionError) as err:  # replaying a file of other records
            raise UserError(
                f"The sweep journal {local} cannot be replayed ({type(err).__name__}: {first_line(err)}); it is not "
                "an optuna journal file, or it was damaged.",
                "Pass the journal `planner sweep` wrote, or a new file name to start a new sweep.",
            ) from None

    from optuna.exceptions import StorageInternalError
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return _open_rdb(spec)
    except ImportError as err:
        # optuna re-raises the driver's ModuleNotFoundError as a bare ImportError; the name is in the chain.
        missing = next((e.name for e in _error_chain(err) if isinstance(e, ModuleNotFoundError)), None)
        if missing is None:
            raise
        raise UserError(
            f"The storage {spec.display} needs the Python package '{missing}', which is not installed.",
            "Install the database driver (e.g. `pip install psycopg2-binary` for PostgreSQL, "
            "`pip install pymysql` with a mysql+pymysql:// URL for MySQL).",
        ) from None
    except (SQLAlchemyError, StorageInternalError, ValueError) as err:
        cause = next((e for e in _error_chain(err) if isinstance(e, SQLAlchemyError)), err)
        raise UserError(
            f"Cannot open the sweep storage {spec.display}: {first_line(cause)}",
            "Check the URL, that the database server is reachable and that the user may create tables.",
        ) from None


def _is_sweep_sqlite(path: Path) -> bool:
    """Whether an SQLite file holds optuna's tables; opened read-only, so nothing is ever written to it."""
    import sqlite3
    from contextlib import closing

    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'studies'"
            return conn.execute(query).fetchone() is not None
    except sqlite3.DatabaseError:  # not an SQLite file at all
        return False


def first_line(err: BaseException) -> str:
    """An error's first line, for one-paragraph messages (SQLAlchemy appends SQL and links below it)."""
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def release_connections(storage: BaseStorage) -> None:
    """Close an RDB storage's pooled connections (and with them any lock they hold); journals hold none."""
    engine = getattr(storage, "engine", None)
    if engine is not None:
        storage.remove_session()
        engine.dispose()


@contextmanager
def storage_failures(spec: StorageSpec) -> Iterator[None]:
    """A storage that fails after it opened (a full disk, a damaged page of an SQLite file, a journal damaged
    in its middle, a database server gone) is a `Failure` naming it, not a traceback."""
    from optuna.exceptions import StorageInternalError
    from sqlalchemy.exc import SQLAlchemyError

    from planner.sweep.journal import JournalDamaged

    try:
        yield
    except (StorageInternalError, SQLAlchemyError, JournalDamaged) as err:
        cause = next((e for e in _error_chain(err) if isinstance(e, SQLAlchemyError)), err)
        raise Failure(
            f"The sweep storage {spec.display} failed: {first_line(cause)}.",
            "If the disk is full or the database server was unreachable, fix that and run the command again: "
            "finished runs are kept. If the file is damaged, restore it from a copy, or move it away to start "
            "the sweep over.",
        ) from None
