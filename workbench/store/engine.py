"""Engine and sessions: SQLite with WAL, foreign keys and a busy timeout; PostgreSQL by URL.

Opening a store applies the Alembic migrations up to head, so a workspace made by an older version
upgrades itself on first open. The one copy of the migrations is the checkout's top-level
``migrations/``, which the wheel ships as the ``workbench.migrations`` package: both read the same files.
"""

from __future__ import annotations

import os
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


class DatabaseError(WorkbenchError):
    """The database cannot be opened or migrated (bad URL, no server, no such folder, no revision)."""


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
    except (sa_exc.ArgumentError, sa_exc.OperationalError, sa_exc.InterfaceError, CommandError) as exc:
        orig = getattr(exc, "orig", None)
        reason = str(orig if orig is not None else exc).strip().splitlines()[0]
        raise DatabaseError(f"database {safe_url(url)}: {reason}") from exc


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001 - DBAPI callback
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def json_dumps(obj: object) -> str:
    """JSON columns go through orjson: several times faster than json on polygon lists."""
    return orjson.dumps(obj).decode()


def make_engine(url: str) -> Engine:
    kwargs = {"json_serializer": json_dumps, "json_deserializer": orjson.loads}
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000}, **kwargs)
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


def upgrade(url: str, revision: str = "head") -> None:
    from alembic import command

    with database_errors(url):
        command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    from alembic import command

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
        with database_errors(url):
            self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits at the end of the block or rolls back on any error."""
        with self._sessions() as session, session.begin():
            yield session

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
