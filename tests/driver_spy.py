"""See (and interrupt) every statement a SQLAlchemy engine's *driver* runs.

:class:`~mfakit.storage.sql.SQLStore` sends the statements of
:meth:`~mfakit.storage.sql.SQLStore.update_subject` (the verification hot path) straight
to the DBAPI connection, past SQLAlchemy's execution events, so tests and benchmarks that
count, explain or interrupt a sign-in's statements watch the driver instead:

* SQLite (``sqlite3``): the connection's trace callback, which receives each statement as
  SQLite runs it, parameters inlined, ``BEGIN`` and ``COMMIT`` included. Connections are
  watched from their checkout on: SQLStore keeps one SQLite connection per thread for its
  units, opened at the thread's first unit, so start the spy before that.
* PostgreSQL (``psycopg``): ``Cursor.execute`` and ``Connection.commit`` are wrapped for
  the duration, and report only for connections checked out of the spied engine's pool.
  The hook runs *before* the statement or commit reaches the server, so it can kill the
  backend first (``tests/test_sql_faults.py``).

Usage::

    with DriverSpy(store.engine) as spy:
        mfa.verify(...)
    spy.events  # [("SELECT", sql, parameters), ..., ("COMMIT", "COMMIT", None)]
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Callable
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

#: ``(dbapi_connection, kind, sql, parameters)``; ``kind`` is the statement's first word
#: in capitals, or ``"COMMIT"``.
Hook = Callable[[Any, str, str, Any], None]


@dataclasses.dataclass
class DriverSpy:
    """Records the engine's driver-level statements while active (a context manager).

    Args:
        engine: The engine whose pooled connections to watch.
        hook: Called before each statement and commit (PostgreSQL), or as SQLite starts
            each statement.
    """

    engine: sa.Engine
    hook: Hook | None = None
    events: list[tuple[str, str, Any]] = dataclasses.field(default_factory=list)
    _watched: dict[int, Any] = dataclasses.field(default_factory=dict)
    _undo: list[Callable[[], None]] = dataclasses.field(default_factory=list)

    @property
    def kinds(self) -> list[str]:
        """The kinds of the events seen, in order (``"SELECT"``, ``"COMMIT"``, ...)."""
        return [kind for kind, _, _ in self.events]

    def _seen(self, connection: Any, sql: str, parameters: Any) -> None:
        words = sql.split(None, 1)
        kind = words[0].upper() if words else ""
        if self.hook is not None:
            self.hook(connection, kind, sql, parameters)
        self.events.append((kind, sql, parameters))

    def _watch(self, dbapi_connection: Any, _record: Any, _proxy: Any = None) -> None:
        self._watched[id(dbapi_connection)] = dbapi_connection
        if self.engine.dialect.name == "sqlite":
            dbapi_connection.set_trace_callback(functools.partial(self._traced, dbapi_connection))

    def _traced(self, connection: Any, sql: str) -> None:
        self._seen(connection, sql, None)

    def __enter__(self) -> DriverSpy:
        event.listen(self.engine, "checkout", self._watch)
        self._undo.append(lambda: event.remove(self.engine, "checkout", self._watch))
        if self.engine.dialect.name == "postgresql":
            self._wrap_psycopg()
        return self

    def _wrap_psycopg(self) -> None:
        import psycopg

        spy = self
        execute = psycopg.Cursor.execute
        commit = psycopg.Connection.commit

        @functools.wraps(execute)
        def spied_execute(cursor: Any, query: Any, params: Any = None, **kw: Any) -> Any:
            if id(cursor.connection) in spy._watched:
                spy._seen(cursor.connection, str(query), params)
            return execute(cursor, query, params, **kw)

        @functools.wraps(commit)
        def spied_commit(connection: Any) -> None:
            if id(connection) in spy._watched:
                spy._seen(connection, "COMMIT", None)
            commit(connection)

        psycopg.Cursor.execute = spied_execute  # type: ignore[method-assign,assignment]
        psycopg.Connection.commit = spied_commit  # type: ignore[method-assign,assignment]

        def restore() -> None:
            psycopg.Cursor.execute = execute  # type: ignore[method-assign]
            psycopg.Connection.commit = commit  # type: ignore[method-assign]

        self._undo.append(restore)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        while self._undo:
            self._undo.pop()()
        if self.engine.dialect.name == "sqlite":
            for connection in self._watched.values():
                # A connection closed meanwhile has nothing to undo.
                with contextlib.suppress(Exception):
                    connection.set_trace_callback(None)
        self._watched.clear()
