"""An in-memory :class:`~mfakit.typing.Store` for tests, demos and single-process apps."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from mfakit._models import Challenge, Changes, Credential, LockState, QuotaState, SubjectRecords
from mfakit._parts import MAX_WRITE_RETRIES
from mfakit.exceptions import ConcurrencyConflict, StoreError

__all__ = ["MemoryStore"]

_R = TypeVar("_R", Credential, Challenge, LockState, QuotaState)
_T = TypeVar("_T")


class MemoryStore:
    """Thread-safe in-memory store honouring the atomic compare-and-set contract.

    One lock guards all tables, so every ``put_*`` is a single atomic check-and-write.
    Nothing survives the process. :meth:`dump` returns the raw contents so tests can check
    that no secret is kept in clear.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._credentials: dict[str, Credential] = {}
        # subject id -> ids in insertion order; replaced (never mutated) so reads need no lock
        self._by_subject: dict[str, tuple[str, ...]] = {}
        self._challenges: dict[str, Challenge] = {}
        self._locks: dict[str, LockState] = {}
        self._quotas: dict[str, QuotaState] = {}

    def __repr__(self) -> str:
        return (
            f"MemoryStore(credentials={len(self._credentials)}, challenges={len(self._challenges)})"
        )

    @staticmethod
    def _cas(table: dict[str, _R], key: str, record: _R) -> bool:
        if not MemoryStore._fits(table.get(key), record):
            return False
        table[key] = record
        return True

    # credentials -----------------------------------------------------------------------
    def get_credential(self, credential_id: str) -> Credential | None:
        """Return the credential with this id, or ``None``."""
        return self._credentials.get(credential_id)

    def list_credentials(self, subject_id: str) -> Sequence[Credential]:
        """Return every credential of a subject, oldest first."""
        credentials = self._credentials
        found = [credentials.get(i) for i in self._by_subject.get(subject_id, ())]
        return [c for c in found if c is not None]

    def iter_credentials(self) -> Iterator[Credential]:
        """Yield a snapshot of every credential."""
        with self._lock:
            snapshot = list(self._credentials.values())
        yield from snapshot

    def put_credential(self, credential: Credential) -> bool:
        """Conditionally write ``credential`` (version must be stored version + 1)."""
        with self._lock:
            current = self._credentials.get(credential.id)
            if current is not None and current.subject_id != credential.subject_id:
                return False  # an id never changes owner
            if not self._cas(self._credentials, credential.id, credential):
                return False
            owned = self._by_subject.get(credential.subject_id, ())
            if credential.id not in owned:
                self._by_subject[credential.subject_id] = (*owned, credential.id)
            return True

    def delete_credential(self, credential_id: str, *, version: int) -> bool:
        """Delete the credential if its stored version is ``version``."""
        with self._lock:
            current = self._credentials.get(credential_id)
            if current is None or current.version != version:
                return False
            del self._credentials[credential_id]
            owned = tuple(
                i for i in self._by_subject.get(current.subject_id, ()) if i != credential_id
            )
            if owned:
                self._by_subject[current.subject_id] = owned
            else:
                self._by_subject.pop(current.subject_id, None)
            return True

    # challenges ------------------------------------------------------------------------
    def get_challenge(self, challenge_id: str) -> Challenge | None:
        """Return the challenge with this id, or ``None``."""
        return self._challenges.get(challenge_id)

    def put_challenge(self, challenge: Challenge) -> bool:
        """Conditionally write ``challenge``."""
        with self._lock:
            return self._cas(self._challenges, challenge.id, challenge)

    def delete_challenge(self, challenge_id: str, *, version: int) -> bool:
        """Delete the challenge if its stored version is ``version``."""
        with self._lock:
            current = self._challenges.get(challenge_id)
            if current is None or current.version != version:
                return False
            del self._challenges[challenge_id]
            return True

    def purge_challenges(self, *, now: dt.datetime) -> int:
        """Delete challenges no longer answerable at ``now`` (``expires_at <= now``)."""
        with self._lock:
            dead = [k for k, c in self._challenges.items() if c.expires_at <= now]
            for key in dead:
                del self._challenges[key]
            return len(dead)

    # lock state ------------------------------------------------------------------------
    def get_lock_state(self, subject_id: str) -> LockState:
        """Return the subject's lock state, or a fresh one (version 0)."""
        state = self._locks.get(subject_id)
        return state if state is not None else LockState(subject_id)

    def put_lock_state(self, state: LockState) -> bool:
        """Conditionally write ``state``."""
        with self._lock:
            return self._cas(self._locks, state.subject_id, state)

    # send quotas -----------------------------------------------------------------------
    def get_quota(self, key: str) -> QuotaState:
        """Return the quota state for ``key``, or a fresh one (version 0)."""
        state = self._quotas.get(key)
        return state if state is not None else QuotaState(key)

    def put_quota(self, state: QuotaState) -> bool:
        """Conditionally write ``state``."""
        with self._lock:
            return self._cas(self._quotas, state.key, state)

    # units -----------------------------------------------------------------------------
    def update_subject(
        self,
        subject_id: str,
        work: Callable[[SubjectRecords], tuple[Changes, _T]],
        *,
        challenge_id: str | None = None,
    ) -> _T:
        """Read, decide and write under the store's lock (see :meth:`Store.update_subject`).

        The one lock that makes each ``put_*`` atomic is held for the whole unit, so no
        other write of any subject interleaves with it.
        """
        for _ in range(MAX_WRITE_RETRIES):
            with self._lock:
                challenge = None if challenge_id is None else self._challenges.get(challenge_id)
                if challenge is not None and challenge.subject_id != subject_id:
                    challenge = None
                records = SubjectRecords(
                    self.get_lock_state(subject_id),
                    tuple(self.list_credentials(subject_id)),
                    challenge,
                )
                changes, result = work(records)
                if self._apply(subject_id, changes):
                    return result
        raise ConcurrencyConflict("update_subject kept losing to concurrent writes")

    def _apply(self, subject_id: str, changes: Changes) -> bool:
        """Write every change, or none if any one's condition fails (lock held)."""
        lock, credential = changes.lock, changes.credential
        challenge, withdraw = changes.challenge, changes.withdraw
        for record in (lock, credential, challenge, withdraw):
            if record is not None and record.subject_id != subject_id:
                raise StoreError("update_subject: a change belongs to another subject")
        current_credential = None if credential is None else self._credentials.get(credential.id)
        ok = (
            (lock is None or self._fits(self._locks.get(subject_id), lock))
            and (credential is None or self._fits(current_credential, credential))
            and (current_credential is None or current_credential.subject_id == subject_id)
            and (challenge is None or self._fits(self._challenges.get(challenge.id), challenge))
            and (
                withdraw is None
                or getattr(self._challenges.get(withdraw.id), "version", None) == withdraw.version
            )
        )
        if not ok:
            return False
        if lock is not None:
            self._locks[subject_id] = lock
        if credential is not None:
            self._credentials[credential.id] = credential
            owned = self._by_subject.get(subject_id, ())
            if credential.id not in owned:
                self._by_subject[subject_id] = (*owned, credential.id)
        if challenge is not None:
            self._challenges[challenge.id] = challenge
        if withdraw is not None:
            del self._challenges[withdraw.id]
        return True

    @staticmethod
    def _fits(current: _R | None, record: _R) -> bool:
        """Whether ``record`` may replace ``current`` under the atomic contract."""
        return record.version == (0 if current is None else current.version) + 1

    # testing aid -----------------------------------------------------------------------
    def dump(self) -> dict[str, list[object]]:
        """Everything stored, as plain records (for tests that look for leaked secrets)."""
        with self._lock:
            return {
                "credentials": list(self._credentials.values()),
                "challenges": list(self._challenges.values()),
                "lock_states": list(self._locks.values()),
                "quotas": list(self._quotas.values()),
            }
