"""A throw-away PostgreSQL server for the tests: `initdb` into a temporary directory, listening on
127.0.0.1 at a free port only (and a unix socket in the same directory), stopped and deleted at the end.

The server binaries come from the system (Debian's `postgresql` package keeps them in
/usr/lib/postgresql/<version>/bin, off PATH). initdb and postgres refuse to run as root, so as root
they run as an unprivileged user (`nobody` unless PLANNER_TEST_PG_USER names another) who owns the
data directory. Without the binaries the tests that need the server skip with the reason, except
under CI (the `CI` environment variable set), where a missing server is a failure: CI installs it.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

DEBIAN_BIN_GLOB = "/usr/lib/postgresql/*/bin"
SUPERUSER = "postgres"
# The role and database of docs/own-data.md's recipe; the tests create them with these statements.
RECIPE_ROLE, RECIPE_PASSWORD = "planner", "secret"
RECIPE_SQL = [
    f"CREATE ROLE {RECIPE_ROLE} LOGIN PASSWORD '{RECIPE_PASSWORD}'",
    f"CREATE DATABASE planner OWNER {RECIPE_ROLE}",
]
URL_FORM = "postgresql+psycopg2://{user}:{password}@{host}:{port}/{database}"


def find_bindir() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres, or None."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    found = [Path(d) for d in glob.glob(DEBIAN_BIN_GLOB) if (Path(d) / "initdb").is_file()]
    # The newest major version: the directory above bin/ is named after it.
    found.sort(key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0)
    return found[-1] if found else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    bindir: Path
    base: Path  # the temporary directory: data/, the socket, the log
    port: int
    os_user: str | None  # the unprivileged user the server runs as, when we are root
    superuser_password: str
    _databases: int = 0

    def _cmd(self, tool: str, *args: str) -> list[str]:
        cmd = [str(self.bindir / tool), *args]
        return ["runuser", "-u", self.os_user, "--", *cmd] if self.os_user else cmd

    def url(self, database: str, user: str = RECIPE_ROLE, password: str = RECIPE_PASSWORD) -> str:
        return URL_FORM.format(user=user, password=password, host="127.0.0.1", port=self.port, database=database)

    def execute(self, *statements: str, database: str = "postgres") -> None:
        """Run statements as the superuser (autocommit: CREATE DATABASE cannot run in a transaction)."""
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=SUPERUSER,
                                password=self.superuser_password, dbname=database)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                for statement in statements:
                    cur.execute(statement)
        finally:
            conn.close()

    def new_database(self, owner: str = RECIPE_ROLE) -> str:
        """A fresh database (the recipe's CREATE DATABASE statement, another name); returns its name."""
        self._databases += 1
        name = f"planner_{self._databases}"
        self.execute(f"CREATE DATABASE {name} OWNER {owner}")
        return name

    def stop(self) -> None:
        subprocess.run(self._cmd("pg_ctl", "-D", str(self.base / "data"), "-m", "immediate", "-w", "stop"),
                       capture_output=True, timeout=60)
        shutil.rmtree(self.base, ignore_errors=True)


def _start(bindir: Path) -> PostgresServer:
    os_user = None
    if os.geteuid() == 0:
        os_user = os.environ.get("PLANNER_TEST_PG_USER", "nobody")
    base = Path(tempfile.mkdtemp(prefix="planner-pg-"))
    password = secrets.token_hex(8)
    (base / "pw").write_text(password + "\n")
    if os_user:
        entry = pwd.getpwnam(os_user)
        for path in (base, base / "pw"):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    server = PostgresServer(bindir, base, 0, os_user, password)
    init = subprocess.run(
        server._cmd("initdb", "-D", str(base / "data"), "-U", SUPERUSER, f"--pwfile={base / 'pw'}",
                    "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync"),
        capture_output=True, text=True, timeout=120,
    )
    if init.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        raise RuntimeError(f"initdb failed:\n{init.stdout}\n{init.stderr}")
    last = ""
    for _ in range(3):  # a free port may be taken by someone else before the server binds it
        server.port = _free_port()
        # Loopback only; durability off (a test database is thrown away).
        options = (f"-c listen_addresses=127.0.0.1 -p {server.port} -c unix_socket_directories={base} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100")
        start = subprocess.run(
            server._cmd("pg_ctl", "-D", str(base / "data"), "-l", str(base / "server.log"), "-w", "-t", "60",
                        "-o", options, "start"),
            capture_output=True, text=True, timeout=120,
        )
        if start.returncode == 0:
            server.execute(*RECIPE_SQL)
            return server
        log = base / "server.log"
        last = start.stdout + start.stderr + (log.read_text() if log.exists() else "")
    shutil.rmtree(base, ignore_errors=True)
    raise RuntimeError(f"the PostgreSQL server did not start:\n{last}")


def start_or_skip() -> PostgresServer:
    """A running server, or skip (fail under CI) when this machine has no PostgreSQL server binaries."""
    bindir = find_bindir()
    if bindir is None:
        reason = ("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH or in "
                  f"{DEBIAN_BIN_GLOB}; install the `postgresql` package to run these tests")
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI must run them)", pytrace=False)
        pytest.skip(reason)
    try:
        import psycopg2  # noqa: F401  (the driver the sweep and these helpers use)
    except ModuleNotFoundError:
        reason = "the psycopg2 driver is not installed (`pip install -e .[dev]` installs it)"
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return _start(bindir)
