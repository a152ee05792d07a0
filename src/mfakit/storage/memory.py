"""An in-memory :class:`~mfakit.typing.Store` for tests, demos and single-process apps."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator, Sequence
from typing import TypeVar

from mfakit._models import Challenge, Credential, LockState, QuotaState

__all__ = ["MemoryStore"]

_R = TypeVar("_R", Credential, Challenge, LockState, QuotaState)


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
        current = table.get(key)
        expected = 0 if current is None else current.version
        if record.version != expected + 1:
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
