"""A :class:`~mfakit.typing.Store` on the Django ORM: :class:`DjangoStore`.

Install the app and create its tables::

    INSTALLED_APPS = [..., "mfakit.contrib.django"]   # settings.py (app label "mfakit")
    # python manage.py migrate mfakit

    from mfakit.contrib.django import DjangoStore

    store = DjangoStore()                    # the "default" database
    store = DjangoStore(using="mfa")         # or any alias of settings.DATABASES

Every ``put_*`` is **one** conditional SQL statement, so the atomic contract of
:class:`~mfakit.typing.Store` holds across threads, processes and machines:

* version 1: one ``INSERT`` in its own savepoint (``transaction.atomic``). A duplicate key
  means someone else inserted first: the savepoint is rolled back, so a surrounding
  transaction stays usable, and the call returns ``False``. Any other integrity error (a
  ``NOT NULL`` column given ``None``) is a fault and raises.
* version ``n > 1``: ``QuerySet.filter(pk=..., version=n - 1).update(...)`` (credentials
  also filter on ``subject_id``: an id never changes owner); it stored the record iff one
  row changed.
* ``delete_*``: ``DELETE ... WHERE pk = ... AND version = ...``.

Nothing is ever read and then written. The store holds no connection of its own: each
call runs on the calling thread's connection for the alias, exactly as Django's ORM does,
so one store may be shared by every thread. Outside a transaction each statement commits
at once; inside one (``transaction.atomic``, ``ATOMIC_REQUESTS``) it is part of that
transaction (see ``docs/django.md`` on why mfakit's writes should not be rolled back
with a failed request).

Datetimes need ``USE_TZ = True`` (system check ``mfakit.E001``); they are written as UTC
and always come back as aware UTC datetimes. Credential ``params`` must be
JSON-serialisable (tuples come back as lists).

Database failures raise :class:`~mfakit.exceptions.StoreError` whose message names the
operation and the error class only: driver messages can quote row contents, so they are
not chained into the error either.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, Error, IntegrityError, connections, transaction
from django.db.models import F, Manager, Model, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from mfakit._models import (
    Challenge,
    Changes,
    Credential,
    CredentialStatus,
    LockState,
    QuotaState,
    SubjectRecords,
)
from mfakit._parts import MAX_WRITE_RETRIES
from mfakit.exceptions import ConcurrencyConflict, StoreError

if TYPE_CHECKING:
    from mfakit.contrib.django.models import ChallengeRecord, CredentialRecord, LockStateRecord

__all__ = ["DjangoStore"]

_M = TypeVar("_M", bound=Model)
_T = TypeVar("_T")

_UTC: Final = dt.timezone.utc
_ITER_BATCH: Final = 500
# SQLSTATEs that mean "this statement lost a race and did nothing": serialization failure
# and deadlock. Under a stricter isolation level than the default READ COMMITTED a losing
# conditional write ends this way instead of changing no row.
_LOST_RACE: Final = frozenset({"40001", "40P01"})
_UNIQUE_VIOLATION: Final = "23505"  # SQLSTATE class 23, unique_violation (ISO/IEC 9075)
_SQLITE_DUPLICATE: Final = frozenset({"SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT_UNIQUE"})
_MYSQL_DUPLICATE: Final = 1062  # ER_DUP_ENTRY


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise StoreError("DjangoStore refuses a naive datetime (mfakit uses aware UTC)")
    return value.astimezone(_UTC)


def _utc_or_none(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else _utc(value)


def _loaded(value: dt.datetime) -> dt.datetime:
    # USE_TZ = True (checked before any query) makes Django return aware datetimes; the
    # conversion gives every one the same tzinfo, datetime.timezone.utc.
    return value.replace(tzinfo=_UTC) if value.tzinfo is None else value.astimezone(_UTC)


def _loaded_or_none(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else _loaded(value)


def _from_iso(value: str) -> dt.datetime:
    return _loaded(dt.datetime.fromisoformat(value))


def _dumps(value: object, what: str) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        raise StoreError(f"DjangoStore cannot store {what}: not JSON-serialisable") from None


def _driver_error(error: BaseException) -> BaseException | None:
    """The DB-API exception Django wrapped (``raise ... from``), if any."""
    cause = error.__cause__
    return cause if cause is not None and cause is not error else None


def _sqlstate(error: BaseException) -> str | None:
    cause = _driver_error(error)
    code = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    return code if isinstance(code, str) else None


def _store_error(operation: str, error: BaseException) -> StoreError:
    """A StoreError naming the operation and error classes, never the driver's message."""
    detail = type(error).__name__
    cause = _driver_error(error)
    if cause is not None and type(cause).__name__ != detail:
        detail += f" / {type(cause).__name__}"
    state = _sqlstate(error)
    if state:
        detail += f" (SQLSTATE {state})"
    return StoreError(f"DjangoStore.{operation} failed: {detail}")


class DjangoStore:
    """A :class:`~mfakit.typing.Store` in the tables of the ``mfakit`` Django app.

    Args:
        using: The database alias (a key of ``settings.DATABASES``) holding the tables.
            A separate alias for the same database, without ``ATOMIC_REQUESTS``, keeps
            mfakit's writes (failure counts, replay marks) committed even when a
            request's own transaction is rolled back.

    The store keeps nothing but the alias, so it may be created at import time, before
    Django is set up, and shared by every thread. The models are loaded on the first
    call, which runs on the calling thread's own connection for the alias.

    Raises:
        django.core.exceptions.ImproperlyConfigured: On the first call, if ``USE_TZ`` is
            not ``True`` (system check ``mfakit.E001``).
    """

    def __init__(self, using: str = DEFAULT_DB_ALIAS) -> None:
        if not isinstance(using, str) or not using:
            raise TypeError("using must be the alias of a database in settings.DATABASES")
        self._using = using
        self._checked = False

    @property
    def using(self) -> str:
        """The database alias the store reads and writes."""
        return self._using

    def __repr__(self) -> str:
        return f"DjangoStore(using={self._using!r})"

    # plumbing --------------------------------------------------------------------------
    def _check(self) -> None:
        """Refuse to run with ``USE_TZ = False`` (checked on the first call only)."""
        if not self._checked:
            if not settings.USE_TZ:
                raise ImproperlyConfigured(
                    "mfakit.contrib.django needs USE_TZ = True (system check mfakit.E001)"
                )
            self._checked = True

    def _objects(self, model: type[_M]) -> QuerySet[_M]:
        manager: Manager[_M] = model._default_manager  # a class property: Any to mypy
        return manager.using(self._using)

    @contextlib.contextmanager
    def _errors(self, operation: str) -> Iterator[None]:
        """Turn database errors into :class:`StoreError` (no row contents, no chaining)."""
        try:
            yield
        except Error as error:
            raise _store_error(operation, error) from None

    def _lost_race(self, error: Error) -> bool:
        """Whether ``error`` is a conditional write losing to a concurrent one.

        Only outside a transaction: inside one, the database has aborted the caller's
        transaction too, which a ``False`` (inviting a retry on it) would hide.
        """
        if _sqlstate(error) not in _LOST_RACE:
            return False
        return not connections[self._using].in_atomic_block

    def _is_duplicate_key(self, error: IntegrityError, model: type[Model], pk: str) -> bool:
        """Whether an INSERT's IntegrityError is a duplicate primary key (a lost race).

        The driver's own error code decides where it has one (SQLSTATE 23505 on
        PostgreSQL, SQLite's extended result codes, MySQL's 1062); on any other backend a
        row with that key existing after the failure decides it.
        """
        cause = _driver_error(error)
        state = _sqlstate(error)
        if state is not None:
            return state == _UNIQUE_VIOLATION
        name = getattr(cause, "sqlite_errorname", None)  # Python >= 3.11
        if isinstance(name, str):
            return name in _SQLITE_DUPLICATE
        if connections[self._using].vendor == "sqlite":  # Python 3.10: only the message
            return str(cause).startswith("UNIQUE constraint failed")
        args = getattr(cause, "args", ())
        if args and isinstance(args[0], int):  # mysqlclient and PyMySQL: (errno, message)
            return args[0] == _MYSQL_DUPLICATE
        return bool(self._objects(model).filter(pk=pk).exists())

    def _insert(self, operation: str, record: Model) -> bool:
        """INSERT ``record``; True if inserted, False if its key already exists."""
        model = type(record)
        with self._errors(operation):
            try:
                # A savepoint (or a transaction, outside one) around the one statement: on
                # PostgreSQL a failed INSERT aborts the whole surrounding transaction.
                with transaction.atomic(using=self._using):
                    # bulk_create: one INSERT, without save()'s signals.
                    self._objects(model).bulk_create([record])
            except IntegrityError as error:
                if self._is_duplicate_key(error, model, str(record.pk)):
                    return False
                raise
            except Error as error:
                if self._lost_race(error):
                    return False
                raise
        return True

    def _update(self, operation: str, query: QuerySet[Any], values: dict[str, Any]) -> bool:
        """UPDATE the rows of ``query`` (at most one); True iff exactly one changed."""
        with self._errors(operation):
            try:
                return int(query.update(**values)) == 1
            except Error as error:
                if self._lost_race(error):
                    return False
                raise

    def _delete(self, operation: str, query: QuerySet[Any]) -> int:
        """DELETE the rows of ``query`` as one statement; return how many went.

        ``QuerySet.delete()`` turns into SELECT-then-DELETE-by-pk as soon as any
        ``pre_delete``/``post_delete`` receiver exists (even one for every model), which
        would drop the version condition from the DELETE. ``_raw_delete`` is the single
        ``DELETE ... WHERE`` that ``delete()`` itself runs when nothing listens.
        """
        with self._errors(operation):
            try:
                return int(query._raw_delete(query.db))
            except Error as error:
                if self._lost_race(error):
                    return 0
                raise

    # credentials -----------------------------------------------------------------------
    @staticmethod
    def _credential(row: CredentialRecord) -> Credential:
        return Credential(
            id=row.id,
            subject_id=row.subject_id,
            tenant=row.tenant,
            factor=row.factor,
            label=row.label,
            status=CredentialStatus(row.status),
            created_at=_loaded(row.created_at),
            expires_at=_loaded_or_none(row.expires_at),
            confirmed_at=_loaded_or_none(row.confirmed_at),
            last_used_at=_loaded_or_none(row.last_used_at),
            counter=int(row.counter),
            params=json.loads(row.params),
            secret=bytes(row.secret),
            version=int(row.version),
        )

    @staticmethod
    def _credential_values(credential: Credential) -> dict[str, Any]:
        return {
            "subject_id": credential.subject_id,
            "tenant": credential.tenant,
            "factor": credential.factor,
            "label": credential.label,
            "status": CredentialStatus(credential.status).value,
            "created_at": _utc(credential.created_at),
            "expires_at": _utc_or_none(credential.expires_at),
            "confirmed_at": _utc_or_none(credential.confirmed_at),
            "last_used_at": _utc_or_none(credential.last_used_at),
            "counter": credential.counter,
            "params": _dumps(dict(credential.params), "credential params"),
            "secret": bytes(credential.secret),
            "version": credential.version,
        }

    def get_credential(self, credential_id: str) -> Credential | None:
        """Return the credential with this id, or ``None``."""
        from mfakit.contrib.django.models import CredentialRecord

        self._check()
        with self._errors("get_credential"):
            row = self._objects(CredentialRecord).filter(pk=credential_id).first()
        return None if row is None else self._credential(row)

    def list_credentials(self, subject_id: str) -> Sequence[Credential]:
        """Return every credential of a subject, oldest first (then in insertion order)."""
        from mfakit.contrib.django.models import CredentialRecord

        self._check()
        query = (
            self._objects(CredentialRecord)
            .filter(subject_id=subject_id)
            .order_by("created_at", "seq", "id")
        )
        with self._errors("list_credentials"):
            rows = list(query)
        return [self._credential(row) for row in rows]

    def iter_credentials(self) -> Iterator[Credential]:
        """Yield every credential, read in batches of 500 (one query each).

        Keyset pagination by id: no cursor stays open while the caller works, and a
        credential is never yielded twice.
        """
        from mfakit.contrib.django.models import CredentialRecord

        self._check()
        after: str | None = None
        while True:
            query = self._objects(CredentialRecord).order_by("id")
            if after is not None:
                query = query.filter(id__gt=after)
            with self._errors("iter_credentials"):
                rows = list(query[:_ITER_BATCH])
            for row in rows:
                yield self._credential(row)
            if len(rows) < _ITER_BATCH:
                return
            after = rows[-1].id

    def put_credential(self, credential: Credential) -> bool:
        """Conditionally write ``credential`` (see the atomic contract)."""
        from mfakit.contrib.django.models import CredentialRecord

        self._check()
        values = self._credential_values(credential)
        if credential.version < 1:
            return False
        if credential.version == 1:
            # seq = 1 + the subject's highest, computed by the INSERT itself.
            highest = (
                self._objects(CredentialRecord)
                .filter(subject_id=credential.subject_id)
                .order_by("-seq")
                .values("seq")[:1]
            )
            seq = Coalesce(Subquery(highest), Value(0)) + Value(1)
            record = CredentialRecord(id=credential.id, seq=seq, **values)
            return self._insert("put_credential", record)
        query = self._objects(CredentialRecord).filter(
            pk=credential.id,
            version=credential.version - 1,
            subject_id=credential.subject_id,  # an id never changes owner
        )
        return self._update("put_credential", query, values)

    def delete_credential(self, credential_id: str, *, version: int) -> bool:
        """Delete the credential if its stored version is ``version``."""
        from mfakit.contrib.django.models import CredentialRecord

        self._check()
        query = self._objects(CredentialRecord).filter(pk=credential_id, version=version)
        return self._delete("delete_credential", query) == 1

    # challenges ------------------------------------------------------------------------
    @staticmethod
    def _challenge(row: ChallengeRecord) -> Challenge:
        return Challenge(
            id=row.id,
            subject_id=row.subject_id,
            tenant=row.tenant,
            factor=row.factor,
            created_at=_loaded(row.created_at),
            expires_at=_loaded(row.expires_at),
            max_attempts=int(row.max_attempts),
            attempts=int(row.attempts),
            credential_id=row.credential_id,
            code_hash=bytes(row.code_hash),
            sends=int(row.sends),
            resend_at=_loaded_or_none(row.resend_at),
            destination_hint=row.destination_hint,
            prompts=tuple(str(p) for p in json.loads(row.prompts)),
            version=int(row.version),
        )

    def get_challenge(self, challenge_id: str) -> Challenge | None:
        """Return the challenge with this id, or ``None``."""
        from mfakit.contrib.django.models import ChallengeRecord

        self._check()
        with self._errors("get_challenge"):
            row = self._objects(ChallengeRecord).filter(pk=challenge_id).first()
        return None if row is None else self._challenge(row)

    def put_challenge(self, challenge: Challenge) -> bool:
        """Conditionally write ``challenge`` (see the atomic contract)."""
        from mfakit.contrib.django.models import ChallengeRecord

        self._check()
        values = {
            "subject_id": challenge.subject_id,
            "tenant": challenge.tenant,
            "factor": challenge.factor,
            "created_at": _utc(challenge.created_at),
            "expires_at": _utc(challenge.expires_at),
            "max_attempts": challenge.max_attempts,
            "attempts": challenge.attempts,
            "credential_id": challenge.credential_id,
            "code_hash": bytes(challenge.code_hash),
            "sends": challenge.sends,
            "resend_at": _utc_or_none(challenge.resend_at),
            "destination_hint": challenge.destination_hint,
            "prompts": _dumps(list(challenge.prompts), "challenge prompts"),
            "version": challenge.version,
        }
        if challenge.version < 1:
            return False
        if challenge.version == 1:
            return self._insert("put_challenge", ChallengeRecord(id=challenge.id, **values))
        query = self._objects(ChallengeRecord).filter(
            pk=challenge.id, version=challenge.version - 1
        )
        return self._update("put_challenge", query, values)

    def delete_challenge(self, challenge_id: str, *, version: int) -> bool:
        """Delete the challenge if its stored version is ``version``."""
        from mfakit.contrib.django.models import ChallengeRecord

        self._check()
        query = self._objects(ChallengeRecord).filter(pk=challenge_id, version=version)
        return self._delete("delete_challenge", query) == 1

    def purge_challenges(self, *, now: dt.datetime) -> int:
        """Delete challenges no longer answerable at ``now`` (``expires_at <= now``)."""
        from mfakit.contrib.django.models import ChallengeRecord

        self._check()
        query = self._objects(ChallengeRecord).filter(expires_at__lte=_utc(now))
        return self._delete("purge_challenges", query)

    # lock state ------------------------------------------------------------------------
    def get_lock_state(self, subject_id: str) -> LockState:
        """Return the subject's lock state, or a fresh one (version 0)."""
        from mfakit.contrib.django.models import LockStateRecord

        self._check()
        with self._errors("get_lock_state"):
            row = self._objects(LockStateRecord).filter(pk=subject_id).first()
        return LockState(subject_id) if row is None else self._lock_state(row)

    @staticmethod
    def _lock_state(row: LockStateRecord) -> LockState:
        return LockState(
            subject_id=row.subject_id,
            failures=int(row.failures),
            locked_until=_loaded_or_none(row.locked_until),
            suspended=bool(row.suspended),
            lockouts=int(row.lockouts),
            version=int(row.version),
        )

    def put_lock_state(self, state: LockState) -> bool:
        """Conditionally write ``state`` (see the atomic contract)."""
        from mfakit.contrib.django.models import LockStateRecord

        self._check()
        values = {
            "failures": state.failures,
            "locked_until": _utc_or_none(state.locked_until),
            "suspended": bool(state.suspended),
            "lockouts": state.lockouts,
            "version": state.version,
        }
        if state.version < 1:
            return False
        if state.version == 1:
            record = LockStateRecord(subject_id=state.subject_id, **values)
            return self._insert("put_lock_state", record)
        query = self._objects(LockStateRecord).filter(
            pk=state.subject_id, version=state.version - 1
        )
        return self._update("put_lock_state", query, values)

    # send quotas -----------------------------------------------------------------------
    def get_quota(self, key: str) -> QuotaState:
        """Return the send-quota state for ``key``, or a fresh one (version 0)."""
        from mfakit.contrib.django.models import QuotaRecord

        self._check()
        with self._errors("get_quota"):
            row = self._objects(QuotaRecord).filter(pk=key).first()
        if row is None:
            return QuotaState(key)
        sent = tuple(_from_iso(str(s)) for s in json.loads(row.sent))
        return QuotaState(key=row.key, sent=sent, version=int(row.version))

    def put_quota(self, state: QuotaState) -> bool:
        """Conditionally write ``state`` (see the atomic contract)."""
        from mfakit.contrib.django.models import QuotaRecord

        self._check()
        values = {
            "sent": _dumps([_utc(s).isoformat() for s in state.sent], "quota times"),
            "version": state.version,
        }
        if state.version < 1:
            return False
        if state.version == 1:
            return self._insert("put_quota", QuotaRecord(key=state.key, **values))
        query = self._objects(QuotaRecord).filter(pk=state.key, version=state.version - 1)
        return self._update("put_quota", query, values)

    # units -----------------------------------------------------------------------------
    def update_subject(
        self,
        subject_id: str,
        work: Callable[[SubjectRecords], tuple[Changes, _T]],
        *,
        challenge_id: str | None = None,
    ) -> _T:
        """Read, decide and write in one transaction (see :meth:`Store.update_subject`).

        Units of one subject are serialised by locking the subject's lock-state row first
        (``select_for_update``; on SQLite, which has no row locks, a no-op ``UPDATE`` of
        that row takes the database's write lock). A subject without that row first gets
        its clean slate (version 1) inserted, so that there is one to lock. The changes
        are written with the ``put_*`` statements inside the same ``transaction.atomic``;
        if one changes no row, the transaction is rolled back and the unit runs again.
        """
        self._check()
        for _ in range(MAX_WRITE_RETRIES):
            try:
                with transaction.atomic(using=self._using):
                    records = self._read_subject(subject_id, challenge_id)
                    changes, result = work(records)
                    if not self._write_changes(subject_id, changes):
                        raise _RolledBack
            except _RolledBack:
                continue
            return result
        raise ConcurrencyConflict("DjangoStore.update_subject kept losing to concurrent writes")

    def _read_subject(self, subject_id: str, challenge_id: str | None) -> SubjectRecords:
        from mfakit.contrib.django.models import LockStateRecord

        query = self._objects(LockStateRecord).filter(pk=subject_id)
        with self._errors("update_subject"):
            if connections[self._using].features.has_select_for_update:
                row = query.select_for_update().first()
            else:
                row = query.first() if query.update(version=F("version")) else None
        if row is not None:
            lock = self._lock_state(row)
        else:
            lock = LockState(subject_id, version=1)
            if not self.put_lock_state(lock):
                raise _RolledBack  # a concurrent first unit inserted it: start again
        challenge = None if challenge_id is None else self.get_challenge(challenge_id)
        if challenge is not None and challenge.subject_id != subject_id:
            challenge = None
        return SubjectRecords(lock, tuple(self.list_credentials(subject_id)), challenge)

    def _write_changes(self, subject_id: str, changes: Changes) -> bool:
        for record in (changes.lock, changes.credential, changes.challenge, changes.withdraw):
            if record is not None and record.subject_id != subject_id:
                raise StoreError("DjangoStore.update_subject: a change belongs to another subject")
        withdraw = changes.withdraw
        return (
            (changes.lock is None or self.put_lock_state(changes.lock))
            and (changes.credential is None or self.put_credential(changes.credential))
            and (changes.challenge is None or self.put_challenge(changes.challenge))
            and (withdraw is None or self.delete_challenge(withdraw.id, version=withdraw.version))
        )


class _RolledBack(Exception):
    """Raised inside a unit's ``transaction.atomic`` to roll it back and run it again."""
