"""Engine and sessions: SQLite with WAL, foreign keys and a busy timeout; PostgreSQL by URL.

Opening a store applies the Alembic migrations up to head, so a workspace made by an older version
upgrades itself on first open. The one copy of the migrations is the checkout's top-level
``migrations/``, which the wheel ships as the ``workbench.migrations`` package: both read the same files.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from workbench.domain import WorkbenchError

BUSY_TIMEOUT_MS = 10_000
"""How long a write waits for another writer; ``WORKBENCH_DB_BUSY_TIMEOUT`` (seconds) overrides it."""

_DAMAGED = ("file is not a database", "database disk image is malformed", "file is encrypted")
_BUSY = ("database is locked", "database table is locked")


class DatabaseError(WorkbenchError):
    """The database cannot be opened or migrated (bad URL, no server, no such folder, no revision)."""


def busy_timeout_ms() -> int:
    """The busy timeout in milliseconds (the environment may shorten it, e.g. for a quick test)."""
    value = os.environ.get("WORKBENCH_DB_BUSY_TIMEOUT")
    if not value:
        return BUSY_TIMEOUT_MS
    try:
        return max(0, int(float(value) * 1000))
    except ValueError:
        raise DatabaseError(f"WORKBENCH_DB_BUSY_TIMEOUT must be a number of seconds, got {value!r}") from None


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL (None for other databases and in-memory ones)."""
    try:
        parsed = make_url(url)
    except Exception:  # an unparsable URL is reported by the engine
        return None
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def _where(url: str) -> str:
    path = sqlite_path(url)
    return str(path) if path is not None else safe_url(url)


def not_a_workbench_database(where: str, why: str) -> DatabaseError:
    return DatabaseError(f"{where}: not a workbench database ({why}); it was left as it is")


def busy_error(url: str) -> DatabaseError:
    """A write that waited past the busy timeout: one line, and what it means for the data."""
    seconds = busy_timeout_ms() / 1000
    return DatabaseError(
        f"database {_where(url)} is busy: another process has held its write lock for over {seconds:g} s; "
        "nothing was changed, try again when it has finished"
    )


def translate_error(exc: BaseException, url: str) -> DatabaseError | None:
    """The one-line error for a database that is damaged, foreign or busy; None for anything else."""
    orig = getattr(exc, "orig", None) or exc
    if not isinstance(orig, sqlite3.DatabaseError):
        return None
    text = str(orig).strip().lower()
    if any(t in text for t in _BUSY):
        return busy_error(url)
    if any(t in text for t in _DAMAGED):
        return not_a_workbench_database(_where(url), f"damaged or not SQLite: {str(orig).strip()}")
    return None


def check_sqlite_file(path: Path, url: str) -> None:
    """Refuse a ``workbench.db`` that is not ours before anything writes to it.

    SQLite would turn an empty file into a new database, and migrations would add their tables to
    another program's database; text, random bytes or a truncated copy fail deep in a query. Each is
    refused here in one line, and the file is not touched: SQLite itself reads its header and table
    names. (Opening the file directly would not do: closing that descriptor drops the locks that this
    process's other connections hold on it, and they fail with 'disk I/O error'.)
    """
    where = str(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    except OSError as exc:
        raise DatabaseError(f"{where}: cannot read the database: {exc.strerror or exc}") from None
    if size == 0:
        raise not_a_workbench_database(where, "an empty file; move it away to start a new workspace")
    try:
        conn = sqlite3.connect(path, timeout=busy_timeout_ms() / 1000)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            page_size = conn.execute("PRAGMA page_size").fetchone()[0]
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise (translate_error(exc, url) or not_a_workbench_database(where, str(exc))) from None
    # the size the header announces; with no write-ahead log beside it, the file holds every page
    if not Path(f"{path}-wal").exists() and (size := path.stat().st_size) < page_size * pages:
        announced = page_size * pages
        raise not_a_workbench_database(where, f"truncated: {size} bytes of the {announced} its header announces")
    if tables and "alembic_version" not in tables:
        names = ", ".join(sorted(tables)[:5])
        raise not_a_workbench_database(where, f"an SQLite database of another program, with tables {names}")


def safe_url(url: str) -> str:
    """The URL as errors show it: the password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL has no password part to hide
        return url


@contextmanager
def database_errors(url: str) -> Iterator[None]:
    """Errors of opening, connecting or migrating become one line naming the database, not a traceback."""
    from alembic.util import CommandError

    try:
        yield
    except sa_exc.DBAPIError as exc:
        translated = translate_error(exc, url)
        if translated is not None:
            raise translated from exc
        if not isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)):
            raise
        raise DatabaseError(f"database {safe_url(url)}: {str(exc.orig).strip().splitlines()[0]}") from exc
    except (sa_exc.ArgumentError, CommandError) as exc:
        orig = getattr(exc, "orig", None)
        reason = str(orig if orig is not None else exc).strip().splitlines()[0]
        raise DatabaseError(f"database {safe_url(url)}: {reason}") from exc


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001 - DBAPI callback
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={busy_timeout_ms()}")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def json_dumps(obj: object) -> str:
    """JSON columns go through orjson: several times faster than json on polygon lists."""
    return orjson.dumps(obj).decode()


def make_engine(url: str) -> Engine:
    kwargs = {"json_serializer": json_dumps, "json_deserializer": orjson.loads}
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": busy_timeout_ms() / 1000}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def migrations_dir() -> Path:
    """The Alembic script folder, found as a package so an installed wheel and the checkout agree."""
    return Path(str(resources.files("workbench.migrations")))


def alembic_config(url: str):  # noqa: ANN201 - alembic type kept local to avoid import at module load
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _check_file(url: str) -> None:
    path = sqlite_path(url)
    if path is not None:
        check_sqlite_file(path, url)


def upgrade(url: str, revision: str = "head") -> None:
    from alembic import command

    _check_file(url)
    with database_errors(url):
        command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    from alembic import command

    _check_file(url)
    with database_errors(url):
        command.downgrade(alembic_config(url), revision)


def current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with database_errors(url):
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                return MigrationContext.configure(conn).get_current_revision()
        finally:
            engine.dispose()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


class Store:
    """One database: an engine, a session factory and a transaction helper."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        if migrate:
            upgrade(url)
        else:
            _check_file(url)
        with database_errors(url):
            self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits at the end of the block or rolls back on any error.

        A busy or damaged database ends in one line (rolled back, so nothing was changed).
        """
        try:
            with self._sessions() as session, session.begin():
                yield session
        except sa_exc.DBAPIError as exc:
            translated = translate_error(exc, self.url)
            if translated is None:
                raise
            raise translated from exc

    def dispose(self) -> None:
        self.engine.dispose()


def open_store(url: str | None = None, *, workspace: Path | None = None, migrate: bool = True) -> Store:
    """Open (and migrate) the store named by ``url``, ``WORKBENCH_DATABASE_URL`` or the workspace."""
    url = url or os.environ.get("WORKBENCH_DATABASE_URL")
    if not url:
        if workspace is None:
            raise ValueError("open_store needs a database URL or a workspace folder")
        workspace.mkdir(parents=True, exist_ok=True)
        url = sqlite_url(workspace / "workbench.db")
    return Store(url, migrate=migrate)
