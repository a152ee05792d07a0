"""Every statement of a TOTP sign-in on SQLStore is served by an index, never a full scan.

The statements are captured as the driver receives them (``tests/driver_spy.py``: the
verification unit bypasses SQLAlchemy's execution events) while a subject opens
challenges and answers them with a right and a wrong code, and while it answers codes
without a challenge (``verify_totp``); then each one is explained with its own parameters:

* SQLite: ``EXPLAIN QUERY PLAN``; a ``SCAN <table>`` line is a full scan, and every
  ``SELECT``, ``UPDATE`` and ``DELETE`` must ``SEARCH`` through an index or the primary key.
* PostgreSQL: ``EXPLAIN (FORMAT JSON)`` with ``enable_seqscan = off``. These tables are
  tiny, and on tiny tables the planner rightly prefers a sequential scan; with sequential
  scans disabled it still picks one when *no* index can serve the predicate, so a
  ``Seq Scan`` node means a missing index.

The scale benchmark (``benchmarks/test_scale.py``) measures what this guarantees: sign-in
latency that does not grow with the number of enrolled subjects.

PostgreSQL runs when ``MFAKIT_TEST_POSTGRES_URL`` is set (skipped otherwise, failed under
``CI=true``), in tables of its own that are dropped afterwards.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest

from mfakit import MFA, InvalidCode, Keyring, Subject
from mfakit.factors import TOTP
from mfakit.testing import FakeClock, totp_now

IN_CI: Final = os.environ.get("CI", "").lower() == "true"
POSTGRES_ENV: Final = "MFAKIT_TEST_POSTGRES_URL"

try:
    import sqlalchemy as sa
except ImportError:  # pragma: no cover - the "sql" extra is not installed
    if IN_CI:
        raise
    pytest.skip("SQLAlchemy is not installed (pip install 'mfakit[sql]')", allow_module_level=True)

from driver_spy import DriverSpy  # noqa: E402
from mfakit.storage.sql import SQLStore  # noqa: E402

Captured = list[tuple[str, Any]]
#: Statement kinds a sign-in must send at least once each, by table suffix.
EXPECTED: Final = {
    ("INSERT", "challenges"),
    ("SELECT", "challenges"),
    ("SELECT", "credentials"),
    ("SELECT", "lock_states"),
    ("UPDATE", "lock_states"),
    ("UPDATE", "challenges"),
    ("UPDATE", "credentials"),
    ("DELETE", "challenges"),
}
_TABLE = re.compile(r"(?:FROM|INTO|UPDATE)\s+\"?(\w+?)\"?[\s(]", re.IGNORECASE)


PREFIX: Final = f"ix{uuid.uuid4().hex[:8]}_"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLStore]:
    if request.param == "sqlite":
        sqlite_store = SQLStore(f"sqlite:///{tmp_path}/mfa.db", table_prefix=PREFIX, create=True)
        yield sqlite_store
        sqlite_store.close()
        return
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        message = f"{POSTGRES_ENV} is not set (e.g. postgresql+psycopg://postgres@127.0.0.1/test)"
        if IN_CI:
            pytest.fail(f"CI=true but {message}")
        pytest.skip(message)
    pg_store = SQLStore(url, table_prefix=PREFIX, create=True)
    try:
        yield pg_store
    finally:
        pg_store.drop_schema()
        pg_store.close()


def sign_in_statements(store: SQLStore) -> Captured:
    """The statements (with parameters) of sign-ins with a right and a wrong code."""
    clock = FakeClock()
    mfa = MFA(store=store, keyring=Keyring.ephemeral(), factors=[TOTP(issuer="ACME")], clock=clock)
    subject = Subject(id="user-1")
    enrollment = mfa.enroll(subject, TOTP.setup())
    mfa.confirm(subject, enrollment.id, totp_now(enrollment.secret, clock.now()))
    with DriverSpy(store.engine) as spy:
        for right in (False, True, True):  # a failure first: it updates the lock state
            clock.advance(30)
            challenge = mfa.challenge(subject, "totp")
            code = totp_now(enrollment.secret, clock.now(), offset=0 if right else 5)
            if right:
                mfa.verify(subject, challenge.id, code)
            else:
                with pytest.raises(InvalidCode):
                    mfa.verify(subject, challenge.id, code)
        clock.advance(30)
        mfa.verify_totp(subject, totp_now(enrollment.secret, clock.now()))
    # Not queries: transaction control, and the pool's pre-ping (";") on PostgreSQL.
    return [
        (sql, parameters)
        for kind, sql, parameters in spy.events
        if kind not in {"BEGIN", "COMMIT", "ROLLBACK", ";"}
    ]


def kind_and_table(statement: str) -> tuple[str, str]:
    """``("UPDATE", "credentials")``: the statement's verb and table (without the prefix)."""
    match = _TABLE.search(statement)
    assert match is not None, statement
    return statement.split(None, 1)[0].upper(), match.group(1).removeprefix(PREFIX)


def sqlite_plan(conn: sa.Connection, statement: str, parameters: Any) -> list[str]:
    rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
    return [str(row[-1]) for row in rows]


def postgres_nodes(conn: sa.Connection, statement: str, parameters: Any) -> list[dict[str, Any]]:
    (plan,) = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters).one()
    if isinstance(plan, str):
        plan = json.loads(plan)
    nodes: list[dict[str, Any]] = []
    pending = [plan[0]["Plan"]]
    while pending:
        node = pending.pop()
        nodes.append(node)
        pending.extend(node.get("Plans", ()))
    return nodes


def test_sign_in_uses_indexes_only(store: SQLStore) -> None:
    captured = sign_in_statements(store)
    kinds = {kind_and_table(statement) for statement, _ in captured}
    assert kinds >= EXPECTED  # the capture saw the whole verify path
    explained = 0
    with store.engine.begin() as conn:
        if store.engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        for statement, parameters in captured:
            kind, table = kind_and_table(statement)
            if store.engine.dialect.name == "sqlite":
                plan = sqlite_plan(conn, statement, parameters)
                scans = [line for line in plan if re.match(r"SCAN (?!CONSTANT ROW)", line)]
                assert not scans, f"full scan in {statement!r}: {plan}"
                if kind != "INSERT":
                    assert any(
                        line.startswith("SEARCH")
                        and ("USING INDEX" in line or "PRIMARY KEY" in line)
                        for line in plan
                    ), f"no index search in {statement!r}: {plan}"
            else:
                nodes = postgres_nodes(conn, statement, parameters)
                types = [node["Node Type"] for node in nodes]
                assert "Seq Scan" not in types, f"sequential scan in {statement!r}: {types}"
                if kind != "INSERT":
                    used = {node.get("Index Name", "") for node in nodes}
                    assert any(f"{PREFIX}{table}" in name for name in used), (
                        f"no index of {table} in {statement!r}: {types} {used}"
                    )
            explained += 1
    assert explained == len(captured)
