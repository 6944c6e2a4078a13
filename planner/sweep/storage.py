"""Where the study lives: resolving `--storage`, opening it, and the lock under which one process at a time
prepares the study (creates it, checks its settings, queues points).

The lock is what makes "one process enqueues" hold when several `planner sweep` start together, on a new
storage too: on a file storage (SQLite, journal) an flock of the file itself (over NFS, Linux maps it to a
POSIX lock the server keeps); on a database server an advisory lock (PostgreSQL `pg_advisory_lock`, MySQL
`GET_LOCK`). Each is freed by the operating system or the server when its holder dies, so a killed sweep
never leaves it taken. Creating optuna's tables happens under it too, so concurrent creators never race.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import sqlite3
import warnings
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.exceptions import ExperimentalWarning, StorageInternalError
from optuna.storages import BaseStorage, JournalStorage
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from core.config import PlannerConfig
from core.errors import Failure, UserError, first_line
from planner.sweep.journal import JournalDamaged, TornTailSafeJournal

log = logging.getLogger(__name__)

DEFAULT_DB_NAME = "sweep.db"
JOURNAL_SUFFIXES = (".log", ".journal")
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
# SQLite waits this long for the write lock before giving up; workers only hold it for milliseconds.
SQLITE_LOCK_TIMEOUT_S = 120


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


def _error_chain(err: BaseException):
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


@contextmanager
def exclusive(spec: StorageSpec, name: str) -> Iterator[None]:
    """Hold the study's preparation lock for the block (see the module docstring)."""
    local = spec.local_file
    if local is not None:
        with _opening(spec):
            local.parent.mkdir(parents=True, exist_ok=True)
            handle = open(local, "a")  # creates nothing but an empty storage, which SQLite and optuna would too
        with handle:
            # flock, on the storage file itself: no file of our own left behind, and a kind of lock that
            # SQLite's (POSIX byte ranges) and optuna's journal lock (a symlink) never contend with.
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes, or the process dies
            yield
        return
    key = int.from_bytes(hashlib.sha256(f"planner-sweep:{name}".encode()).digest()[:8], "big", signed=True)
    with _opening(spec):
        engine = create_engine(spec.target, poolclass=NullPool)
        conn = engine.connect()
    try:
        dialect = engine.dialect.name
        if dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
        elif dialect in ("mysql", "mariadb"):
            conn.execute(text("SELECT GET_LOCK(:k, -1)"), {"k": f"planner-sweep:{name}"[:64]})
        else:  # another database: no lock, so sweeps started together may queue a point twice
            log.warning("no preparation lock on %s databases: start one `planner sweep` first", dialect)
        conn.commit()
        yield
    finally:
        conn.close()  # ends the session, and with it the lock
        engine.dispose()


# ---------------------------------------------------------------------------------------------- open


def _serialize_sqlite(engine) -> None:
    """Make every SQLite transaction `BEGIN IMMEDIATE` (the write lock before the first read).

    SQLAlchemy's documented recipe: stop the sqlite3 driver from issuing its own (late) BEGIN and issue
    ours when SQLAlchemy starts a transaction. Connections opened before the hooks existed are dropped."""
    @event.listens_for(engine, "connect")
    def _driver_must_not_begin(dbapi_connection, _record):
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()


def open_storage(spec: StorageSpec, create: bool, heartbeat: dict | None = None) -> BaseStorage:
    """Open the storage; with `create=False` a missing SQLite/journal file is a user error, not a new file.
    `heartbeat`: `RDBStorage`'s heartbeat arguments (interval, grace period, stale-run callback); a journal
    has none."""
    local = spec.local_file
    if local is not None and not create:
        if not local.is_file():
            raise UserError(
                f"No sweep storage at {local}.",
                "Run `planner sweep` first (with the same --config/--storage), or pass the storage it used.",
            )
        if spec.kind == "rdb" and not _is_sweep_sqlite(local):  # read-only: never add tables
            raise UserError(
                f"{local} is not a sweep storage (an SQLite database written by `planner sweep`).",
                "Pass the storage `planner sweep` used with --storage, or run `planner sweep` first.",
            )
    with _opening(spec):
        if local is not None:
            local.parent.mkdir(parents=True, exist_ok=True)
        if spec.kind == "journal":
            try:
                return JournalStorage(TornTailSafeJournal(spec.target))
            except (ValueError, LookupError, TypeError, AssertionError) as err:  # replaying a file of other records
                raise UserError(
                    f"The sweep journal {local} cannot be replayed ({type(err).__name__}: {first_line(err)}); it is "
                    "not an optuna journal file, or it was damaged.",
                    "Pass the journal `planner sweep` wrote, or a new file name to start a new sweep.",
                ) from None
        is_sqlite = spec.target.startswith("sqlite")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            engine_kwargs = {"connect_args": {"timeout": SQLITE_LOCK_TIMEOUT_S}} if is_sqlite else {}
            storage = optuna.storages.RDBStorage(spec.target, engine_kwargs=engine_kwargs, **(heartbeat or {}))
        if is_sqlite:
            _serialize_sqlite(storage.engine)
        return storage


@contextmanager
def _opening(spec: StorageSpec) -> Iterator[None]:
    """A storage that cannot be opened (a wrong URL, a refused password, no permission, a missing driver) is
    a user error at once."""
    try:
        yield
    except UserError:  # already says what is wrong (a UserError is also a ValueError: not re-worded below)
        raise
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
    except OSError as err:
        raise UserError(
            f"Cannot open the sweep storage {spec.display}: {err.strerror or err} ({err.filename or spec.display}).",
            "Choose a storage path in a directory you may write to.",
        ) from None
    except (SQLAlchemyError, StorageInternalError, ValueError) as err:
        cause = next((e for e in _error_chain(err) if isinstance(e, SQLAlchemyError)), err)
        raise UserError(
            f"Cannot open the sweep storage {spec.display}: {first_line(cause)}",
            "Check the URL, that the database server is reachable and that the user may create tables.",
        ) from None


def _is_sweep_sqlite(path: Path) -> bool:
    """Whether an SQLite file holds optuna's tables; opened read-only, so nothing is ever written to it."""
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'studies'"
            return conn.execute(query).fetchone() is not None
    except sqlite3.DatabaseError:  # not an SQLite file at all
        return False


def release_connections(storage: BaseStorage) -> None:
    """Close an RDB storage's pooled connections (and with them any lock they hold); journals hold none."""
    storage = getattr(storage, "_backend", storage)  # optuna's cache in front of an RDB storage
    engine = getattr(storage, "engine", None)
    if engine is not None:
        storage.remove_session()
        engine.dispose()


@contextmanager
def storage_failures(spec: StorageSpec) -> Iterator[None]:
    """A storage that fails after it opened (a full disk, a damaged page of an SQLite file, a journal damaged
    in its middle, a database server gone) is a `Failure` naming it, not a traceback."""
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
