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
import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from mfakit._models import Challenge, Credential, CredentialStatus, LockState, QuotaState
from mfakit.exceptions import StoreError

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
        # Prepared statements by shape (see _prepared); a race to fill an entry is benign.
        self._statements: dict[tuple[Any, ...], Any] = {}
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
        """The atomic contract for every table, as one conditional statement.

        Version 1 inserts if absent; version ``v`` updates the row whose key matches and
        whose stored version is ``v - 1`` (and whose ``guards`` columns hold the given
        values); anything else writes nothing. ``on_insert`` builds extra INSERT-only
        column expressions (bound to parameters named ``g_<column>`` of ``guards``).
        """
        if version < 1:
            return False
        guards = guards or {}
        if version == 1:
            names = (*key, *values)

            def build_insert() -> Any:
                bound = {n: sa.bindparam(f"v_{n}", type_=table.c[n].type) for n in names}
                return self._insert(table, {**bound, **(on_insert() if on_insert else {})})

            statement = self._prepared(("insert", table.name, names), build_insert)
            parameters = {f"v_{n}": v for n, v in {**key, **values}.items()}
            parameters.update({f"g_{n}": v for n, v in guards.items()})
        else:

            def build_update() -> Any:
                return (
                    sa.update(table)
                    .where(
                        *(table.c[n] == sa.bindparam(f"k_{n}", type_=table.c[n].type) for n in key),
                        table.c.version == sa.bindparam("k_previous", type_=sa.Integer()),
                        *(
                            table.c[n] == sa.bindparam(f"g_{n}", type_=table.c[n].type)
                            for n in guards
                        ),
                    )
                    .values({n: sa.bindparam(f"v_{n}", type_=table.c[n].type) for n in values})
                )

            statement = self._prepared(
                ("update", table.name, tuple(key), tuple(values), tuple(guards)), build_update
            )
            parameters = {f"k_{n}": v for n, v in key.items()}
            parameters["k_previous"] = version - 1
            parameters.update({f"g_{n}": v for n, v in guards.items()})
            parameters.update({f"v_{n}": v for n, v in values.items()})
        return self._write(operation, statement, parameters)

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
        statement = self._prepared(
            ("delete", table.name),
            lambda: sa.delete(table).where(
                table.c.id == sa.bindparam("k_id", type_=table.c.id.type),
                table.c.version == sa.bindparam("k_version", type_=sa.Integer()),
            ),
        )
        return self._write(operation, statement, {"k_id": row_id, "k_version": version})

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
    def _credential_values(self, credential: Credential) -> dict[str, Any]:
        return {
            "subject_id": credential.subject_id,
            "tenant": credential.tenant,
            "factor": credential.factor,
            "label": credential.label,
            "status": CredentialStatus(credential.status).value,
            "created_at": credential.created_at,
            "expires_at": credential.expires_at,
            "confirmed_at": credential.confirmed_at,
            "last_used_at": credential.last_used_at,
            "counter": credential.counter,
            "params": _dumps(dict(credential.params), "credential params"),
            "secret": bytes(credential.secret),
            "version": credential.version,
        }

    @staticmethod
    def _credential(row: sa.Row[Any]) -> Credential:
        m = row._mapping
        return Credential(
            id=m["id"],
            subject_id=m["subject_id"],
            tenant=m["tenant"],
            factor=m["factor"],
            label=m["label"],
            status=CredentialStatus(m["status"]),
            created_at=m["created_at"],
            expires_at=m["expires_at"],
            confirmed_at=m["confirmed_at"],
            last_used_at=m["last_used_at"],
            counter=int(m["counter"]),
            params=json.loads(m["params"]),
            secret=bytes(m["secret"]),
            version=int(m["version"]),
        )

    def _credential_columns(self) -> list[sa.Column[Any]]:
        return [c for c in self._credentials.c if c.name != "seq"]

    def get_credential(self, credential_id: str) -> Credential | None:
        """Return the credential with this id, or ``None``."""
        row = self._by_key("get_credential", self._credentials, "id", credential_id)
        return None if row is None else self._credential(row)

    def list_credentials(self, subject_id: str) -> Sequence[Credential]:
        """Return every credential of a subject, oldest first (then in insertion order)."""
        t = self._credentials
        query = self._prepared(
            ("list", t.name),
            lambda: (
                sa.select(*self._credential_columns())
                .where(t.c.subject_id == sa.bindparam("k", type_=t.c.subject_id.type))
                .order_by(t.c.created_at, t.c.seq, t.c.id)
            ),
        )
        with self._tx("list_credentials") as conn:
            rows = conn.execute(query, {"k": subject_id}).all()
        return [self._credential(row) for row in rows]

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
                yield self._credential(row)
            if len(rows) < _ITER_BATCH:
                return
            after = rows[-1]._mapping["id"]

    def put_credential(self, credential: Credential) -> bool:
        """Conditionally write ``credential`` (see the atomic contract)."""
        t = self._credentials

        def seq() -> Mapping[str, Any]:
            # Insertion order within the subject, computed by the INSERT itself.
            following = sa.select(sa.func.coalesce(sa.func.max(t.c.seq), 0) + 1).where(
                t.c.subject_id == sa.bindparam("g_subject_id", type_=t.c.subject_id.type)
            )
            return {"seq": following.scalar_subquery()}

        return self._put(
            "put_credential",
            t,
            {"id": credential.id},
            self._credential_values(credential),
            credential.version,
            guards={"subject_id": credential.subject_id},  # an id never changes owner
            on_insert=seq,
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
        if row is None:
            return None
        m = row._mapping
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
        if row is None:
            return LockState(subject_id)
        m = row._mapping
        return LockState(
            subject_id=m["subject_id"],
            failures=int(m["failures"]),
            locked_until=m["locked_until"],
            suspended=bool(m["suspended"]),
            lockouts=int(m["lockouts"]),
            version=int(m["version"]),
        )

    def put_lock_state(self, state: LockState) -> bool:
        """Conditionally write ``state`` (see the atomic contract)."""
        values = {
            "failures": state.failures,
            "locked_until": state.locked_until,
            "suspended": bool(state.suspended),
            "lockouts": state.lockouts,
            "version": state.version,
        }
        return self._put(
            "put_lock_state",
            self._locks,
            {"subject_id": state.subject_id},
            values,
            state.version,
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


def _sqlstate(error: exc.DBAPIError) -> str | None:
    orig = error.orig
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
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
