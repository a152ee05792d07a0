"""A :class:`~mfakit.typing.Store` on SQLAlchemy 2 Core: SQLite, PostgreSQL and others.

Install the extra (``pip install "mfakit[sql]"``, plus a driver such as ``psycopg`` for
PostgreSQL) and build a store from a URL or from the host's own engine::

    from mfakit.storage.sql import SQLStore

    store = SQLStore("sqlite:///var/lib/app/mfa.db", create=True)
    store = SQLStore(engine, table_prefix="mfa_")  # the host's Engine; tables made by hand

Every ``put_*`` is **one** conditional SQL statement, so the atomic contract of
:class:`~mfakit.typing.Store` holds across threads, processes and machines:

* version 1: ``INSERT`` (``ON CONFLICT DO NOTHING`` where the dialect has it; elsewhere a
  unique violation is caught). A record that already exists means someone else won.
* version ``n > 1``: ``UPDATE ... WHERE id = :id AND version = n - 1`` (credentials also
  ``AND subject_id = :subject_id``: an id never changes owner); it stored the record iff
  one row changed.
* ``delete_*``: ``DELETE ... WHERE id = :id AND version = :version``.

Nothing is ever read and then written. Each call runs in its own short transaction taken
from the engine's pool, so one store may be shared by every thread of a process.

Datetimes are stored in UTC (``TIMESTAMP WITH TIME ZONE`` where the dialect has it, naive
UTC elsewhere, such as SQLite) and always come back as aware UTC datetimes. Credential
``params`` must be JSON-serialisable (tuples come back as lists). Secrets are stored as the
encrypted blobs the :class:`~mfakit.Keyring` made, and code hashes as keyed hashes: the
tables hold nothing usable in clear.

Driver failures raise :class:`~mfakit.exceptions.StoreError` whose message names the
operation and the error class only: driver messages can quote row contents, so they are
not chained into the error either.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import os
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final, TypeVar

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from mfakit._models import (
    Challenge,
    Changes,
    Credential,
    CredentialStatus,
    LockState,
    QuotaState,
    SubjectRecords,
    build_credential,
    build_lock_state,
)
from mfakit._parts import MAX_WRITE_RETRIES
from mfakit.exceptions import ConcurrencyConflict, StoreError

__all__ = ["SCHEMA_VERSION", "SQLStore", "configure_sqlite"]

#: The schema version this module writes and reads.
SCHEMA_VERSION: Final = 1

_UTC: Final = dt.timezone.utc
_ID: Final = 255  # Subject.id allows 255 characters; record ids are much shorter
_ITER_BATCH: Final = 500
# Dialects whose DateTime(timezone=True) keeps the offset; elsewhere naive UTC is stored.
_TZ_DIALECTS: Final = frozenset({"postgresql", "mssql", "oracle"})
# SQLSTATEs that mean "this transaction lost a race and did nothing": serialization
# failure and deadlock. Under a stricter isolation level than the default READ COMMITTED
# a losing conditional write ends this way instead of changing no row.
_LOST_RACE: Final = frozenset({"40001", "40P01"})
_UPSERT_DIALECTS: Final = frozenset({"sqlite", "postgresql"})
_MYSQL: Final = frozenset({"mysql", "mariadb"})
# MySQL/MariaDB error numbers of a duplicate key (ER_DUP_ENTRY and its variant naming the
# key). Only these mean "the row exists": SQLSTATE 23000 also covers NOT NULL and other
# constraint violations, which are real faults.
_MYSQL_DUPLICATE_KEY: Final = frozenset({1062, 1586})
# MySQL/MariaDB ER_LOCK_DEADLOCK: InnoDB rolled the transaction back to break a deadlock
# (two first attempts of one subject both inserting its lock row); nothing was written.
_MYSQL_DEADLOCK: Final = 1213
_T = TypeVar("_T")
#: A conditional write ready to run: statement cache key, prepared statement, parameters.
_Write = tuple[tuple[Any, ...], Any, dict[str, Any]]
_SQLITE_PRAGMAS: Final = (
    "PRAGMA busy_timeout=5000",
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)


class _Key(sa.types.TypeDecorator[str]):
    """A text key compared exactly: ``VARCHAR`` in general, ``VARBINARY`` on MySQL/MariaDB.

    MySQL's text collations compare case- and accent-insensitively and (``PAD SPACE``,
    including MariaDB's ``utf8mb4_bin``) ignore trailing spaces, so there ``"alice"``,
    ``"ALICE"`` and ``"alice "`` would be one primary key: one lock state and one quota
    for three subjects. Bytes compare exactly, and UTF-8 byte order is code-point order,
    as in Python, so keyset pagination by id stays consistent. Up to 4 bytes a character.
    """

    impl = sa.String
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in _MYSQL:
            return dialect.type_descriptor(mysql.VARBINARY(self.length * 4))
        return dialect.type_descriptor(sa.String(self.length))

    def bind_processor(self, dialect: sa.Dialect) -> Any:
        # Elsewhere than MySQL the key goes in as it is: no per-value call at all.
        return super().bind_processor(dialect) if dialect.name in _MYSQL else None

    def result_processor(self, dialect: sa.Dialect, coltype: object) -> Any:
        return super().result_processor(dialect, coltype) if dialect.name in _MYSQL else None

    def process_bind_param(self, value: str | None, dialect: sa.Dialect) -> Any:
        if value is not None and dialect.name in _MYSQL:
            return value.encode("utf-8")
        return value

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> str | None:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value).decode("utf-8")
        return None if value is None else str(value)


class _UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """An aware UTC datetime on every dialect (naive UTC in the column where needed)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in _MYSQL:
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))  # keep microseconds
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def bind_processor(self, dialect: sa.Dialect) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        # SQLite stores text; this is the text SQLAlchemy's DATETIME writes there
        # ("2026-01-01 00:00:00.000000", naive UTC), made by one C call per value.
        def process(value: dt.datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is None or value.utcoffset() is None:
                raise StoreError("SQLStore refuses a naive datetime (mfakit uses aware UTC)")
            naive = value.astimezone(_UTC).replace(tzinfo=None)
            return naive.isoformat(sep=" ", timespec="microseconds")

        return process

    def result_processor(self, dialect: sa.Dialect, coltype: object) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def process(value: str | None) -> dt.datetime | None:
            return None if value is None else _from_iso(value)

        return process

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise StoreError("SQLStore refuses a naive datetime (mfakit uses aware UTC)")
        value = value.astimezone(_UTC)
        return value if dialect.name in _TZ_DIALECTS else value.replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=_UTC)
        return value.astimezone(_UTC)


def _utc_iso(value: dt.datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise StoreError("SQLStore refuses a naive datetime (mfakit uses aware UTC)")
    return value.astimezone(_UTC).isoformat()


def _from_iso(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value)
    return parsed.replace(tzinfo=_UTC) if parsed.tzinfo is None else parsed.astimezone(_UTC)


def _dumps(value: object, what: str) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        raise StoreError(f"SQLStore cannot store {what}: not JSON-serialisable") from None


def configure_sqlite(engine: Engine) -> None:
    """Set mfakit's SQLite PRAGMAs on every new connection of ``engine``.

    ``busy_timeout=5000`` (wait for a writer instead of failing), ``journal_mode=WAL``
    (readers never block the writer), ``synchronous=NORMAL`` and ``foreign_keys=ON``.
    :class:`SQLStore` does this itself for engines it creates from a URL; call it for a
    SQLite engine of your own before its first connection.
    """

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            for pragma in _SQLITE_PRAGMAS:
                cursor.execute(pragma)
        finally:
            cursor.close()


def _is_memory_sqlite(url: sa.URL) -> bool:
    if url.get_backend_name() != "sqlite":
        return False
    database = url.database or ""
    return database in ("", ":memory:") or url.query.get("mode") == "memory"


class _Raw:
    """A statement compiled once for one dialect, run on a bare DBAPI cursor.

    :meth:`SQLStore.update_subject` is the verification hot path. SQLAlchemy's
    ``Connection.execute`` costs about 45 µs per statement on the reference machine, five
    times what SQLite needs to run one (docs/benchmarks-results.md), so the unit's few
    statements are compiled by SQLAlchemy once, from the same table definitions and with
    the same type conversions (bind and result processors of each column type), and sent
    straight to the driver.
    """

    __slots__ = ("binds", "converted", "names", "ordered", "results", "returns_rows", "sql")

    def __init__(
        self, statement: Any, dialect: sa.Dialect, columns: Sequence[sa.Column[Any]] = ()
    ) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql: str = compiled.string
        # Positional paramstyles (SQLite's qmark) take a tuple in the compiled order.
        self.names: tuple[str, ...] | None = (
            tuple(compiled.positiontup or ()) if compiled.positional else None
        )
        self.binds: dict[str, Callable[[Any], Any] | None] = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect)
            for name, bind in compiled.binds.items()
        }
        self.ordered = tuple((name, self.binds[name]) for name in self.names or ())
        # Result columns that need converting (the others come from the driver as they are).
        self.converted: tuple[tuple[int, Callable[[Any], Any]], ...] = tuple(
            (index, processor)
            for index, column in enumerate(columns)
            if (processor := column.type.dialect_impl(dialect).result_processor(dialect, None))
        )
        self.results = tuple(c.name for c in columns)
        self.returns_rows = bool(columns) or bool(compiled.effective_returning)

    def parameters(self, values: Mapping[str, Any]) -> Any:
        """The driver's parameters for ``values`` (by bind name), converted for the column."""
        if self.names is None:
            binds = self.binds
            return {
                name: value if (processor := binds[name]) is None else processor(value)
                for name, value in values.items()
            }
        return tuple(
            [
                values[name] if processor is None else processor(values[name])
                for name, processor in self.ordered
            ]
        )

    def values(self, row: Sequence[Any]) -> list[Any]:
        """A result row's values, converted as SQLAlchemy would (in column order)."""
        converted = list(row)
        for index, processor in self.converted:
            value = converted[index]
            if value is not None:  # every column type maps NULL to None
                converted[index] = processor(value)
        return converted

    def row(self, row: Sequence[Any]) -> dict[str, Any]:
        """A result row as ``{column name: converted value}``."""
        return dict(zip(self.results, self.values(row), strict=True))


class _ThreadConnections:
    """One SQLite connection per thread for :meth:`SQLStore.update_subject`, kept open.

    Like Django's persistent connections: a unit runs on its thread's own connection
    instead of checking one out of the pool and returning it, which cost about 20 µs of
    a 170 µs sign-in on the reference machine. Each connection is made through the engine
    (so its ``connect`` events, such as the PRAGMAs, apply) and then detached from the
    pool. Used only for SQLite files on engines the store created itself; closed by
    :meth:`SQLStore.close`. A connection inherited across ``fork()`` is never used by the
    child (nor closed there): the child opens its own.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._local = threading.local()
        self._guard = threading.Lock()
        self._open: weakref.WeakSet[Any] = weakref.WeakSet()
        self._inherited: list[Any] = []

    def get(self) -> Any:
        local = self._local
        connection = getattr(local, "connection", None)
        pid = os.getpid()
        if connection is not None and local.pid == pid:
            return connection
        if connection is not None:
            self._inherited.append(connection)  # the parent's: keep it, untouched
        connection = self._engine.raw_connection()
        connection.detach()
        local.connection, local.pid = connection, pid
        with self._guard:
            self._open.add(connection)
        return connection

    def discard(self) -> None:
        """Drop this thread's connection (after a failure it may not survive)."""
        connection = self._local.__dict__.pop("connection", None)
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()

    def close_all(self) -> None:
        with self._guard:
            connections = list(self._open)
            self._open.clear()
            self._local = threading.local()
        for connection in connections:
            with contextlib.suppress(Exception):
                connection.close()


class SQLStore:
    """A :class:`~mfakit.typing.Store` in SQL tables, on SQLAlchemy 2 Core.

    Args:
        url_or_engine: A database URL (``"sqlite:///mfa.db"``,
            ``"postgresql+psycopg://user@host/db"``) or an existing :class:`sqlalchemy.Engine`.
            An engine built here hides bound parameters from SQLAlchemy's error messages
            and, for SQLite, sets the PRAGMAs of :func:`configure_sqlite`. A host's engine
            is used as it is (and not disposed by :meth:`close`).
        table_prefix: Prefix of every table name, so several stores (or test runs) can
            share one database. Letters, digits and ``_`` only.
        create: Create the tables (:meth:`create_schema`) if they do not exist yet.

    Raises:
        StoreError: The prefix is not letters, digits and ``_``; the URL is malformed,
            names an unknown dialect or a driver that is not installed (the message never
            repeats the URL, which may hold a password); or ``create`` failed.

    The tables live in the store's own :class:`sqlalchemy.MetaData`, never the host's:
    ``{prefix}credentials``, ``{prefix}challenges``, ``{prefix}lock_states``,
    ``{prefix}quotas`` and ``{prefix}schema_version``.

    An in-memory SQLite database (``"sqlite://"``) lives in one shared connection, so
    calls on it are serialised with a lock; use a file for anything but tests.
    """

    def __init__(
        self,
        url_or_engine: str | sa.URL | Engine,
        *,
        table_prefix: str = "mfakit_",
        create: bool = False,
    ) -> None:
        if not table_prefix or not all(c.isalnum() or c == "_" for c in table_prefix):
            raise StoreError("table_prefix must be letters, digits and underscores")
        if not table_prefix.isascii():
            raise StoreError("table_prefix must be ASCII")
        self._prefix = table_prefix
        self._serial: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        self._threads: _ThreadConnections | None = None
        # Prepared statements by shape (see _prepared); a race to fill an entry is benign.
        self._statements: dict[tuple[Any, ...], Any] = {}
        self._raw_statements: dict[tuple[Any, ...], _Raw] = {}
        if isinstance(url_or_engine, Engine):
            self._engine = url_or_engine
            self._owns_engine = False
        else:
            self._engine = self._engine_for(url_or_engine)
            self._owns_engine = True
        self._dialect = self._engine.dialect.name
        self.metadata = sa.MetaData()
        self._build_tables()
        if create:
            self.create_schema()

    def _engine_for(self, url: str | sa.URL) -> Engine:
        """An engine for ``url``; a malformed URL or a missing driver is a StoreError.

        The message names the problem, never the URL: it may hold a password.
        """
        try:
            return self._make_engine(sa.make_url(url))
        except exc.NoSuchModuleError:  # a subclass of ArgumentError: test it first
            raise StoreError("SQLStore: the database URL names an unknown dialect") from None
        except exc.ArgumentError:
            raise StoreError("SQLStore: the database URL is malformed") from None
        except ImportError as error:
            missing = error.name or "a module"
            message = f"SQLStore: the database driver is not installed ({missing})"
            raise StoreError(message) from None

    def _make_engine(self, url: sa.URL) -> Engine:
        if url.get_backend_name() != "sqlite":
            return sa.create_engine(url, hide_parameters=True, pool_pre_ping=True)
        if _is_memory_sqlite(url):
            engine = sa.create_engine(
                url,
                hide_parameters=True,
                poolclass=StaticPool,
                connect_args={"check_same_thread": False},
            )
            self._serial = threading.RLock()
        else:
            engine = sa.create_engine(url, hide_parameters=True)
            self._threads = _ThreadConnections(engine)
        configure_sqlite(engine)
        return engine

    def _build_tables(self) -> None:
        p, md = self._prefix, self.metadata
        when = _UTCDateTime
        self._credentials = sa.Table(
            f"{p}credentials",
            md,
            sa.Column("id", _Key(_ID), primary_key=True),
            sa.Column("subject_id", _Key(_ID), nullable=False, index=True),
            sa.Column("tenant", _Key(_ID), nullable=True, index=True),
            sa.Column("factor", sa.String(64), nullable=False),
            sa.Column("label", sa.Text, nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("created_at", when, nullable=False),
            sa.Column("expires_at", when, nullable=True),
            sa.Column("confirmed_at", when, nullable=True),
            sa.Column("last_used_at", when, nullable=True),
            sa.Column("counter", sa.BigInteger, nullable=False),
            sa.Column("params", sa.Text, nullable=False),
            sa.Column("secret", sa.LargeBinary, nullable=False),
            sa.Column("version", sa.BigInteger, nullable=False),
            # Insertion order within a subject, for "oldest first" among equal created_at.
            sa.Column("seq", sa.BigInteger, nullable=False),
        )
        self._challenges = sa.Table(
            f"{p}challenges",
            md,
            sa.Column("id", _Key(_ID), primary_key=True),
            sa.Column("subject_id", _Key(_ID), nullable=False, index=True),
            sa.Column("tenant", _Key(_ID), nullable=True),
            sa.Column("factor", sa.String(64), nullable=False),
            sa.Column("created_at", when, nullable=False),
            sa.Column("expires_at", when, nullable=False, index=True),
            sa.Column("max_attempts", sa.Integer, nullable=False),
            sa.Column("attempts", sa.Integer, nullable=False),
            sa.Column("credential_id", _Key(_ID), nullable=True),
            sa.Column("code_hash", sa.LargeBinary, nullable=False),
            sa.Column("sends", sa.Integer, nullable=False),
            sa.Column("resend_at", when, nullable=True),
            sa.Column("destination_hint", sa.Text, nullable=True),
            sa.Column("prompts", sa.Text, nullable=False),
            sa.Column("version", sa.BigInteger, nullable=False),
        )
        self._locks = sa.Table(
            f"{p}lock_states",
            md,
            sa.Column("subject_id", _Key(_ID), primary_key=True),
            sa.Column("failures", sa.Integer, nullable=False),
            sa.Column("locked_until", when, nullable=True),
            sa.Column("suspended", sa.Boolean, nullable=False),
            sa.Column("lockouts", sa.Integer, nullable=False),
            sa.Column("version", sa.BigInteger, nullable=False),
        )
        self._quotas = sa.Table(
            f"{p}quotas",
            md,
            sa.Column("key", _Key(200), primary_key=True),
            sa.Column("sent", sa.Text, nullable=False),
            sa.Column("version", sa.BigInteger, nullable=False),
        )
        self._schema = sa.Table(
            f"{p}schema_version",
            md,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("version", sa.Integer, nullable=False),
        )

    # plumbing --------------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine the store runs on."""
        return self._engine

    def __repr__(self) -> str:
        url = self._engine.url.render_as_string(hide_password=True)
        return f"SQLStore({url!r}, table_prefix={self._prefix!r})"

    def close(self) -> None:
        """Dispose of the engine's connections, if the store created the engine."""
        if self._threads is not None:
            self._threads.close_all()
        if self._owns_engine:
            self._engine.dispose()

    @contextlib.contextmanager
    def _tx(self, operation: str) -> Iterator[Connection]:
        """One transaction; driver errors become :class:`StoreError` (no row contents)."""
        try:
            with self._serial, self._engine.begin() as conn:
                yield conn
        except exc.SQLAlchemyError as error:
            raise _store_error(operation, error) from None

    def _write(
        self,
        operation: str,
        statement: sa.Executable,
        parameters: Mapping[str, Any] | None = None,
    ) -> bool:
        """Run one conditional write; True iff exactly one row changed."""
        try:
            with self._serial, self._engine.begin() as conn:
                result = conn.execute(statement, parameters)
                if result.returns_rows:  # INSERT ... RETURNING: a row back means inserted
                    return len(result.all()) == 1
                return result.rowcount == 1
        except exc.IntegrityError as error:
            if isinstance(statement, sa.Insert) and self._duplicate_key(error):
                return False  # the key exists (a concurrent insert won); rolled back
            raise _store_error(operation, error) from None
        except exc.DBAPIError as error:
            if _sqlstate(error) in _LOST_RACE:
                return False
            raise _store_error(operation, error) from None
        except exc.SQLAlchemyError as error:
            raise _store_error(operation, error) from None

    def _duplicate_key(self, error: exc.IntegrityError) -> bool:
        """Whether a failed plain ``INSERT`` failed only because its key exists."""
        if self._dialect in _UPSERT_DIALECTS:
            return False  # ON CONFLICT DO NOTHING: a duplicate never raises there
        if self._dialect in _MYSQL:
            # Not INSERT IGNORE (it turns NOT NULL and other errors into warnings) nor
            # ON DUPLICATE KEY UPDATE id = id (with CLIENT_FOUND_ROWS, which SQLAlchemy's
            # MySQL drivers set, a no-op duplicate reports 1 row, like an insert).
            args: tuple[Any, ...] = getattr(error.orig, "args", ())
            return bool(args) and args[0] in _MYSQL_DUPLICATE_KEY
        return True  # other dialects: any integrity error on a bare INSERT

    def _insert(self, table: sa.Table, values: Mapping[str, Any]) -> sa.Executable:
        # ON CONFLICT DO NOTHING: a duplicate key changes no row instead of raising, so
        # an IntegrityError can only mean a real fault (and the server logs no error).
        if self._dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            return sqlite_insert(table).values(**values).on_conflict_do_nothing()
        if self._dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            # psycopg reports no usable rowcount here: RETURNING tells whether it inserted.
            statement = pg_insert(table).values(**values).on_conflict_do_nothing()
            return statement.returning(*table.primary_key.columns)
        return sa.insert(table).values(**values)  # IntegrityError on a duplicate key

    def _prepared(self, cache_key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        """The statement for ``cache_key``, built once per store.

        Statements are built with bind parameters and values are passed at execution, so
        SQLAlchemy compiles each statement once and reuses it (its compiled cache is keyed
        on the statement's shape); building a statement with literal values on every call
        cost about half of a sign-in's CPU time (docs/benchmarks-results.md).
        """
        statement = self._statements.get(cache_key)
        if statement is None:
            statement = self._statements.setdefault(cache_key, build())
        return statement

    def _put(
        self,
        operation: str,
        table: sa.Table,
        key: Mapping[str, Any],
        values: Mapping[str, Any],
        version: int,
        *,
        guards: Mapping[str, Any] | None = None,
        on_insert: Callable[[], Mapping[str, Any]] | None = None,
    ) -> bool:
        """The atomic contract for every table, as one conditional statement."""
        if version < 1:
            return False
        statement = self._put_statement(table, key, values, version, guards, on_insert)
        return self._write(operation, statement[1], statement[2])

    def _put_statement(
        self,
        table: sa.Table,
        key: Mapping[str, Any],
        values: Mapping[str, Any],
        version: int,
        guards: Mapping[str, Any] | None = None,
        on_insert: Callable[[], Mapping[str, Any]] | None = None,
    ) -> _Write:
        """The conditional statement that writes version ``version`` of a record.

        Version 1 inserts if absent; version ``v`` updates the row whose key matches and
        whose stored version is ``v - 1`` (and whose ``guards`` columns hold the given
        values); anything else writes nothing. ``on_insert`` builds extra INSERT-only
        column expressions (bound to parameters named ``g_<column>`` of ``guards``).

        Returns:
            The statement's cache key, the prepared statement, and its parameters.
        """
        guards = guards or {}
        if version == 1:
            names = (*key, *values)

            def build_insert() -> Any:
                bound = {n: sa.bindparam(f"v_{n}", type_=table.c[n].type) for n in names}
                return self._insert(table, {**bound, **(on_insert() if on_insert else {})})

            cache_key: tuple[Any, ...] = ("insert", table.name, names)
            statement = self._prepared(cache_key, build_insert)
            parameters = {f"v_{n}": v for n, v in {**key, **values}.items()}
            parameters.update({f"g_{n}": v for n, v in guards.items()})
            return cache_key, statement, parameters

        def build_update() -> Any:
            return (
                sa.update(table)
                .where(
                    *(table.c[n] == sa.bindparam(f"k_{n}", type_=table.c[n].type) for n in key),
                    table.c.version == sa.bindparam("k_previous", type_=sa.Integer()),
                    *(table.c[n] == sa.bindparam(f"g_{n}", type_=table.c[n].type) for n in guards),
                )
                .values({n: sa.bindparam(f"v_{n}", type_=table.c[n].type) for n in values})
            )

        cache_key = ("update", table.name, tuple(key), tuple(values), tuple(guards))
        statement = self._prepared(cache_key, build_update)
        parameters = {f"k_{n}": v for n, v in key.items()}
        parameters["k_previous"] = version - 1
        parameters.update({f"g_{n}": v for n, v in guards.items()})
        parameters.update({f"v_{n}": v for n, v in values.items()})
        return cache_key, statement, parameters

    def _by_key(
        self, operation: str, table: sa.Table, column: str, value: str
    ) -> sa.Row[Any] | None:
        """The row of ``table`` whose ``column`` is ``value`` (a prepared SELECT)."""
        statement = self._prepared(
            ("select", table.name, column),
            lambda: sa.select(
                *(self._credential_columns() if table is self._credentials else (table,))
            ).where(table.c[column] == sa.bindparam("k", type_=table.c[column].type)),
        )
        with self._tx(operation) as conn:
            return conn.execute(statement, {"k": value}).first()

    def _delete_versioned(self, operation: str, table: sa.Table, row_id: str, version: int) -> bool:
        _, statement = self._delete_statement(table)
        return self._write(operation, statement, {"k_id": row_id, "k_version": version})

    def _delete_statement(self, table: sa.Table) -> tuple[tuple[Any, ...], Any]:
        cache_key = ("delete", table.name)
        statement = self._prepared(
            cache_key,
            lambda: sa.delete(table).where(
                table.c.id == sa.bindparam("k_id", type_=table.c.id.type),
                table.c.version == sa.bindparam("k_version", type_=sa.Integer()),
            ),
        )
        return cache_key, statement

    # schema ----------------------------------------------------------------------------
    def create_schema(self) -> None:
        """Create the tables that do not exist yet and record the schema version.

        Idempotent, and safe to run from several processes at once.
        """
        with self._tx("create_schema") as conn:
            self.metadata.create_all(conn, checkfirst=True)
        self._write(
            "create_schema",
            self._insert(self._schema, {"id": 1, "version": SCHEMA_VERSION}),
        )

    def drop_schema(self) -> None:
        """Drop every table of this store (all records are lost)."""
        with self._tx("drop_schema") as conn:
            self.metadata.drop_all(conn, checkfirst=True)

    def schema_version(self) -> int | None:
        """The version recorded in ``{prefix}schema_version``, or ``None`` if absent."""
        with self._tx("schema_version") as conn:
            if not sa.inspect(conn).has_table(self._schema.name):
                return None
            found = conn.execute(
                sa.select(self._schema.c.version).where(self._schema.c.id == 1)
            ).scalar_one_or_none()
        return None if found is None else int(found)

    def upgrade(self) -> int:
        """Bring an existing schema up to :data:`SCHEMA_VERSION`; return the version.

        This is the versioned upgrade path. The table ``{prefix}schema_version`` holds one
        row with the version the schema was created or last upgraded to. A later release
        that changes the tables adds one migration step per version (``1 -> 2``,
        ``2 -> 3``, ...), each run in its own transaction together with the update of that
        row, and this method applies the missing steps in order. Run it once after
        upgrading mfakit, before serving requests.

        At version 1 there are no steps: it only checks the recorded version.

        Raises:
            StoreError: If the schema was never created (call :meth:`create_schema`), or
                was written by a newer mfakit than this one.
        """
        found = self.schema_version()
        if found is None:
            raise StoreError("SQLStore schema not found: call create_schema() first")
        if found > SCHEMA_VERSION:
            raise StoreError(
                f"SQLStore schema version {found} is newer than this mfakit "
                f"supports ({SCHEMA_VERSION})"
            )
        # Migration steps for found < SCHEMA_VERSION go here; none exist at version 1.
        return found

    # credentials -----------------------------------------------------------------------
    def _credential_values(
        self, credential: Credential, columns: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """Column values of ``credential``: all of them, or only ``columns``."""
        if columns is None:
            columns = _CREDENTIAL_COLUMNS
        return {column: _CREDENTIAL_CONVERSIONS[column](credential) for column in columns}

    def _credential_columns(self) -> list[sa.Column[Any]]:
        return [c for c in self._credentials.c if c.name != "seq"]

    def get_credential(self, credential_id: str) -> Credential | None:
        """Return the credential with this id, or ``None``."""
        row = self._by_key("get_credential", self._credentials, "id", credential_id)
        return None if row is None else _credential_from(row)

    def list_credentials(self, subject_id: str) -> Sequence[Credential]:
        """Return every credential of a subject, oldest first (then in insertion order)."""
        query = self._list_query()
        with self._tx("list_credentials") as conn:
            rows = conn.execute(query, {"k": subject_id}).all()
        return [_credential_from(row) for row in rows]

    def _list_query(self) -> Any:
        t = self._credentials
        return self._prepared(
            ("list", t.name),
            lambda: (
                sa.select(*self._credential_columns())
                .where(t.c.subject_id == sa.bindparam("k", type_=t.c.subject_id.type))
                .order_by(t.c.created_at, t.c.seq, t.c.id)
            ),
        )

    def iter_credentials(self) -> Iterator[Credential]:
        """Yield every credential, read in batches (each its own short transaction).

        Keyset pagination by id: no connection is held while the caller works, and a
        credential is never yielded twice.
        """
        t = self._credentials
        after: str | None = None
        while True:
            query = sa.select(*self._credential_columns()).order_by(t.c.id).limit(_ITER_BATCH)
            if after is not None:
                query = query.where(t.c.id > after)
            with self._tx("iter_credentials") as conn:
                rows = conn.execute(query).all()
            for row in rows:
                yield _credential_from(row)
            if len(rows) < _ITER_BATCH:
                return
            after = rows[-1]._mapping["id"]

    def put_credential(self, credential: Credential) -> bool:
        """Conditionally write ``credential`` (see the atomic contract)."""
        if credential.version < 1:
            return False
        _, statement, parameters = self._credential_put(credential)
        return self._write("put_credential", statement, parameters)

    def _credential_put(self, credential: Credential) -> _Write:
        t = self._credentials

        def seq() -> Mapping[str, Any]:
            # Insertion order within the subject, computed by the INSERT itself.
            following = sa.select(sa.func.coalesce(sa.func.max(t.c.seq), 0) + 1).where(
                t.c.subject_id == sa.bindparam("g_subject_id", type_=t.c.subject_id.type)
            )
            return {"seq": following.scalar_subquery()}

        return self._put_statement(
            t,
            {"id": credential.id},
            self._credential_values(credential),
            credential.version,
            {"subject_id": credential.subject_id},  # an id never changes owner
            seq,
        )

    def delete_credential(self, credential_id: str, *, version: int) -> bool:
        """Delete the credential if its stored version is ``version``."""
        return self._delete_versioned(
            "delete_credential", self._credentials, credential_id, version
        )

    # challenges ------------------------------------------------------------------------
    @staticmethod
    def _challenge_values(challenge: Challenge) -> dict[str, Any]:
        return {
            "subject_id": challenge.subject_id,
            "tenant": challenge.tenant,
            "factor": challenge.factor,
            "created_at": challenge.created_at,
            "expires_at": challenge.expires_at,
            "max_attempts": challenge.max_attempts,
            "attempts": challenge.attempts,
            "credential_id": challenge.credential_id,
            "code_hash": bytes(challenge.code_hash),
            "sends": challenge.sends,
            "resend_at": challenge.resend_at,
            "destination_hint": challenge.destination_hint,
            "prompts": _dumps(list(challenge.prompts), "challenge prompts"),
            "version": challenge.version,
        }

    def get_challenge(self, challenge_id: str) -> Challenge | None:
        """Return the challenge with this id, or ``None``."""
        row = self._by_key("get_challenge", self._challenges, "id", challenge_id)
        return None if row is None else self._challenge(row._mapping)

    @staticmethod
    def _challenge(m: Mapping[Any, Any]) -> Challenge:
        return Challenge(
            id=m["id"],
            subject_id=m["subject_id"],
            tenant=m["tenant"],
            factor=m["factor"],
            created_at=m["created_at"],
            expires_at=m["expires_at"],
            max_attempts=int(m["max_attempts"]),
            attempts=int(m["attempts"]),
            credential_id=m["credential_id"],
            code_hash=bytes(m["code_hash"]),
            sends=int(m["sends"]),
            resend_at=m["resend_at"],
            destination_hint=m["destination_hint"],
            prompts=tuple(str(p) for p in json.loads(m["prompts"])),
            version=int(m["version"]),
        )

    def put_challenge(self, challenge: Challenge) -> bool:
        """Conditionally write ``challenge`` (see the atomic contract)."""
        return self._put(
            "put_challenge",
            self._challenges,
            {"id": challenge.id},
            self._challenge_values(challenge),
            challenge.version,
        )

    def _challenge_put(self, challenge: Challenge) -> _Write:
        return self._put_statement(
            self._challenges,
            {"id": challenge.id},
            self._challenge_values(challenge),
            challenge.version,
        )

    def delete_challenge(self, challenge_id: str, *, version: int) -> bool:
        """Delete the challenge if its stored version is ``version``."""
        return self._delete_versioned("delete_challenge", self._challenges, challenge_id, version)

    def purge_challenges(self, *, now: dt.datetime) -> int:
        """Delete challenges no longer answerable at ``now`` (``expires_at <= now``)."""
        t = self._challenges
        with self._tx("purge_challenges") as conn:
            return int(conn.execute(sa.delete(t).where(t.c.expires_at <= now)).rowcount)

    # lock state ------------------------------------------------------------------------
    def get_lock_state(self, subject_id: str) -> LockState:
        """Return the subject's lock state, or a fresh one (version 0)."""
        row = self._by_key("get_lock_state", self._locks, "subject_id", subject_id)
        return LockState(subject_id) if row is None else _lock_state_from(row)

    def put_lock_state(self, state: LockState) -> bool:
        """Conditionally write ``state`` (see the atomic contract)."""
        if state.version < 1:
            return False
        _, statement, parameters = self._lock_put(state)
        return self._write("put_lock_state", statement, parameters)

    def _lock_put(self, state: LockState, read: LockState | None = None) -> _Write:
        """The write of ``state``; only the columns that differ from ``read``, if given."""
        values = {
            "failures": state.failures,
            "locked_until": state.locked_until,
            "suspended": bool(state.suspended),
            "lockouts": state.lockouts,
            "version": state.version,
        }
        if read is not None:
            values = {
                column: value
                for column, value in values.items()
                if column == "version" or getattr(read, column) != value
            }
        return self._put_statement(
            self._locks, {"subject_id": state.subject_id}, values, state.version
        )

    # send quotas -----------------------------------------------------------------------
    def get_quota(self, key: str) -> QuotaState:
        """Return the send-quota state for ``key``, or a fresh one (version 0)."""
        row = self._by_key("get_quota", self._quotas, "key", key)
        if row is None:
            return QuotaState(key)
        m = row._mapping
        sent = tuple(_from_iso(str(s)) for s in json.loads(m["sent"]))
        return QuotaState(key=m["key"], sent=sent, version=int(m["version"]))

    def put_quota(self, state: QuotaState) -> bool:
        """Conditionally write ``state`` (see the atomic contract)."""
        values = {
            "sent": _dumps([_utc_iso(s) for s in state.sent], "quota times"),
            "version": state.version,
        }
        return self._put("put_quota", self._quotas, {"key": state.key}, values, state.version)

    # units -----------------------------------------------------------------------------
    def update_subject(
        self,
        subject_id: str,
        work: Callable[[SubjectRecords], tuple[Changes, _T]],
        *,
        challenge_id: str | None = None,
    ) -> _T:
        """Read, decide and write in one transaction (see :meth:`Store.update_subject`).

        Units of one subject are serialised by a lock taken before anything is read: on
        SQLite the database's write lock (``BEGIN IMMEDIATE``), elsewhere the row lock on
        the subject's ``lock_states`` row (``SELECT ... FOR UPDATE``; a subject without
        one first gets its clean slate, version 1, inserted so that there is a row to
        lock). Then the credentials and the challenge are read, ``work`` decides, and its
        changes are written with the same conditional statements as ``put_*``; if one
        changes no row (a write outside any unit got there first), the transaction is
        rolled back and the unit runs again. A deadlock or a lost race to insert the
        lock row (MySQL/MariaDB) is rolled back and retried the same way.

        The statements go straight to the driver (see ``_Raw``): a TOTP check is one
        transaction of three or four statements, on a pooled connection, or on SQLite on
        the thread's own (see ``_ThreadConnections``).
        """
        for _ in range(MAX_WRITE_RETRIES):
            with self._serial:
                written, result = self._unit(subject_id, work, challenge_id)
            if written:
                return result  # type: ignore[return-value]
        raise ConcurrencyConflict("SQLStore.update_subject kept losing to concurrent writes")

    def _unit(
        self,
        subject_id: str,
        work: Callable[[SubjectRecords], tuple[Changes, _T]],
        challenge_id: str | None,
    ) -> tuple[bool, _T | None]:
        """One attempt at a unit: ``(True, result)``, or ``(False, None)`` if rolled back."""
        driver_error: type[Exception] = self._engine.dialect.loaded_dbapi.Error
        threads = self._threads
        try:
            connection = self._engine.raw_connection() if threads is None else threads.get()
        except exc.SQLAlchemyError as error:
            raise _store_error("update_subject", error) from None
        try:
            cursor = connection.cursor()
            try:
                records = self._read_subject(cursor, subject_id, challenge_id)
                changes, result = work(records)
                if self._write_changes(cursor, records, changes):
                    connection.commit()
                    return True, result
            finally:
                cursor.close()
            connection.rollback()
            return False, None
        except driver_error as error:
            self._abandon(connection, driver_error)
            if self._lost_race(error):
                return False, None
            raise _driver_error("update_subject", error) from None
        except BaseException:
            self._abandon(connection, driver_error)
            raise
        finally:
            if threads is None:
                connection.close()  # back to the pool (or discarded, if invalidated)

    def _abandon(self, connection: Any, driver_error: type[Exception]) -> None:
        """Roll back after a failure; a connection that cannot even do that is discarded."""
        try:
            connection.rollback()
        except driver_error:
            if self._threads is None:
                connection.invalidate()
            else:
                self._threads.discard()

    def _raw(
        self,
        cache_key: tuple[Any, ...],
        build: Callable[[], Any],
        columns: Callable[[], Sequence[sa.Column[Any]]] = tuple,
    ) -> _Raw:
        """The driver-level form of a statement, compiled on first use (see ``_Raw``)."""
        raw = self._raw_statements.get(cache_key)
        if raw is None:
            compiled = _Raw(build(), self._engine.dialect, columns())
            raw = self._raw_statements.setdefault(cache_key, compiled)
        return raw

    def _run(self, cursor: Any, raw: _Raw, values: Mapping[str, Any]) -> bool:
        """Execute ``raw``; True iff it changed (or, with RETURNING, returned) one row."""
        cursor.execute(raw.sql, raw.parameters(values))
        if raw.returns_rows:
            return len(cursor.fetchall()) == 1
        return bool(cursor.rowcount == 1)

    def _rows(self, cursor: Any, raw: _Raw, values: Mapping[str, Any]) -> list[dict[str, Any]]:
        cursor.execute(raw.sql, raw.parameters(values))
        return [raw.row(row) for row in cursor.fetchall()]

    def _locked_lock_state(self, cursor: Any, subject_id: str) -> LockState:
        """The subject's lock state, read under the lock that serialises its units."""
        t = self._locks
        locking = self._dialect != "sqlite"  # SQLite: BEGIN IMMEDIATE locks the database
        if not locking:
            cursor.execute("BEGIN IMMEDIATE")
        select = self._raw(
            ("unit_lock", t.name),
            lambda: (
                sa.select(t)
                .where(t.c.subject_id == sa.bindparam("k", type_=t.c.subject_id.type))
                .with_for_update()
            ),
            lambda: list(t.c),
        )
        cursor.execute(select.sql, select.parameters({"k": subject_id}))
        found = cursor.fetchall()
        if found:
            return _lock_state_from(select.values(found[0]))
        if not locking:
            return LockState(subject_id)
        # No row to lock yet: insert the clean slate (version 1). A concurrent first unit
        # makes the INSERT wait for it, then do nothing (PostgreSQL), or fail with a
        # duplicate key or a deadlock (MySQL/MariaDB: rolled back and retried).
        fresh = LockState(subject_id, version=1)
        cache_key, statement, parameters = self._lock_put(fresh)
        if self._run(cursor, self._raw(cache_key, _given(statement)), parameters):
            return fresh
        cursor.execute(select.sql, select.parameters({"k": subject_id}))
        found = cursor.fetchall()
        return _lock_state_from(select.values(found[0])) if found else fresh

    def _read_subject(
        self, cursor: Any, subject_id: str, challenge_id: str | None
    ) -> SubjectRecords:
        lock = self._locked_lock_state(cursor, subject_id)
        listing = self._raw(
            ("list", self._credentials.name), self._list_query, self._credential_columns
        )
        cursor.execute(listing.sql, listing.parameters({"k": subject_id}))
        credentials = tuple(_credential_from(listing.values(row)) for row in cursor.fetchall())
        challenge = None
        if challenge_id is not None:
            c = self._challenges
            by_id = self._raw(
                ("select", c.name, "id"),
                lambda: sa.select(c).where(c.c.id == sa.bindparam("k", type_=c.c.id.type)),
                lambda: list(c.c),
            )
            found = self._rows(cursor, by_id, {"k": challenge_id})
            if found and found[0]["subject_id"] == subject_id:
                challenge = self._challenge(found[0])
        return SubjectRecords(lock, credentials, challenge)

    def _write_changes(self, cursor: Any, records: SubjectRecords, changes: Changes) -> bool:
        """Write each change conditionally; False as soon as one changes no row.

        An update of a record read in this unit sets only the columns that differ from
        what was read. That is exact: the UPDATE still requires the version that was read,
        and a record's content never changes without its version. It keeps a TOTP
        acceptance to three columns (counter, last use, version) instead of every column,
        which spares the type conversions and, on SQLite, the index entries of unchanged
        indexed columns.
        """
        subject_id = records.lock.subject_id
        writes: list[_Write] = []
        for record in (changes.lock, changes.credential, changes.challenge, changes.withdraw):
            if record is not None and record.subject_id != subject_id:
                raise StoreError("SQLStore.update_subject: a change belongs to another subject")
        lock = changes.lock
        if lock is not None:
            read_lock = records.lock
            # A lock state of version 0 was never stored: its next version is an INSERT.
            diff = read_lock.version > 0 and lock.version == read_lock.version + 1
            writes.append(self._lock_put(lock, read_lock if diff else None))
        credential = changes.credential
        if credential is not None:
            read = next((c for c in records.credentials if c.id == credential.id), None)
            if read is None or credential.version != read.version + 1:
                writes.append(self._credential_put(credential))
            else:
                values = self._credential_values(
                    credential,
                    [
                        column
                        for column in _CREDENTIAL_COLUMNS
                        if column == "version"
                        or getattr(credential, column) != getattr(read, column)
                    ],
                )
                writes.append(
                    self._put_statement(
                        self._credentials,
                        {"id": credential.id},
                        values,
                        credential.version,
                        {"subject_id": subject_id},
                    )
                )
        challenge = changes.challenge
        if challenge is not None:
            read_challenge = records.challenge
            if read_challenge is None or read_challenge.id != challenge.id:
                writes.append(self._challenge_put(challenge))
            elif challenge.version == read_challenge.version + 1:
                values = _changed(
                    self._challenge_values(challenge), self._challenge_values(read_challenge)
                )
                writes.append(
                    self._put_statement(
                        self._challenges, {"id": challenge.id}, values, challenge.version
                    )
                )
            else:
                return False  # not the next version of the challenge read: it cannot fit
        if changes.withdraw is not None:
            cache_key, statement = self._delete_statement(self._challenges)
            parameters = {"k_id": changes.withdraw.id, "k_version": changes.withdraw.version}
            writes.append((cache_key, statement, parameters))
        for cache_key, statement, parameters in writes:
            if not self._run(cursor, self._raw(cache_key, _given(statement)), parameters):
                return False
        return True

    def _lost_race(self, error: Exception) -> bool:
        """Whether a driver error means "rolled back, nothing written, run it again"."""
        if self._dialect in _MYSQL:
            args: tuple[Any, ...] = getattr(error, "args", ())
            return bool(args) and args[0] in (_MYSQL_DEADLOCK, *_MYSQL_DUPLICATE_KEY)
        return _driver_sqlstate(error) in _LOST_RACE


#: Every column of the credentials table but the key and ``seq``, in field order, and how
#: each is computed from a :class:`Credential`.
_CREDENTIAL_CONVERSIONS: Final[dict[str, Callable[[Credential], Any]]] = {
    "subject_id": lambda c: c.subject_id,
    "tenant": lambda c: c.tenant,
    "factor": lambda c: c.factor,
    "label": lambda c: c.label,
    "status": lambda c: CredentialStatus(c.status).value,
    "created_at": lambda c: c.created_at,
    "expires_at": lambda c: c.expires_at,
    "confirmed_at": lambda c: c.confirmed_at,
    "last_used_at": lambda c: c.last_used_at,
    "counter": lambda c: c.counter,
    "params": lambda c: _dumps(dict(c.params), "credential params"),
    "secret": lambda c: bytes(c.secret),
    "version": lambda c: c.version,
}
_CREDENTIAL_COLUMNS: Final = tuple(_CREDENTIAL_CONVERSIONS)


def _given(statement: Any) -> Callable[[], Any]:
    return lambda: statement


def _params(text: str) -> Mapping[str, Any]:
    """Stored credential params, read-only; flat ones are parsed once per distinct text."""
    shared = _flat_params(text)
    return shared if shared is not None else MappingProxyType(json.loads(text))


@functools.lru_cache(maxsize=256)
def _flat_params(text: str) -> Mapping[str, Any] | None:
    # Shared between credentials only when no value is itself mutable (a list, a dict).
    parsed = json.loads(text)
    if any(isinstance(value, list | dict) for value in parsed.values()):
        return None
    return MappingProxyType(parsed)


def _lock_state_from(v: Sequence[Any]) -> LockState:
    """A lock state from the converted values of a ``lock_states`` row (field order)."""
    return build_lock_state(v[0], int(v[1]), v[2], bool(v[3]), int(v[4]), int(v[5]))


def _credential_from(v: Sequence[Any]) -> Credential:
    """A credential from the converted values of a row of ``_credential_columns()``.

    Those columns are in the order of :class:`Credential`'s fields, so the record is built
    positionally, without ``__init__`` (this runs on every verification).
    """
    return build_credential(
        v[0],
        v[1],
        v[2],
        v[3],
        v[4],
        CredentialStatus(v[5]),
        v[6],
        v[7],
        v[8],
        v[9],
        int(v[10]),
        _params(v[11]),
        bytes(v[12]),
        int(v[13]),
    )


def _changed(new: Mapping[str, Any], old: Mapping[str, Any]) -> dict[str, Any]:
    """The columns of ``new`` whose values differ from ``old`` (and always ``version``)."""
    return {
        name: value for name, value in new.items() if name == "version" or old.get(name) != value
    }


def _driver_error(operation: str, error: Exception) -> StoreError:
    """Like :func:`_store_error`, for an error raised by the driver itself."""
    detail = type(error).__name__
    code = _driver_sqlstate(error)
    if code:
        detail += f" (SQLSTATE {code})"
    return StoreError(f"SQLStore.{operation} failed: {detail}")


def _sqlstate(error: exc.DBAPIError) -> str | None:
    return _driver_sqlstate(error.orig)


def _driver_sqlstate(error: object) -> str | None:
    """The SQLSTATE of a driver exception (psycopg: ``sqlstate``, psycopg2: ``pgcode``)."""
    code = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return code if isinstance(code, str) else None


def _store_error(operation: str, error: exc.SQLAlchemyError) -> StoreError:
    """A StoreError naming the operation and error classes, never the driver's message."""
    if isinstance(error, exc.StatementError) and isinstance(error.orig, StoreError):
        return error.orig  # raised by our own type conversion (a naive datetime)
    detail = type(error).__name__
    if isinstance(error, exc.DBAPIError) and error.orig is not None:
        detail += f" / {type(error.orig).__name__}"
        state = _sqlstate(error)
        if state:
            detail += f" (SQLSTATE {state})"
    return StoreError(f"SQLStore.{operation} failed: {detail}")
