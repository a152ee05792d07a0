"""The protocols a host application implements (or picks a ready implementation of).

These are structural types (:class:`typing.Protocol`): any object with the right methods
fits, no inheritance needed. mfakit ships implementations of each: :class:`MemoryStore`,
:class:`SystemClock` / :class:`~mfakit.testing.FakeClock`, and the event sinks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

from mfakit._models import (
    Challenge,
    Changes,
    Credential,
    Event,
    LockState,
    QuotaState,
    SubjectRecords,
)

if TYPE_CHECKING:
    from email.message import EmailMessage

__all__ = ["Clock", "EmailSender", "EventSink", "SMSSender", "Store"]

_T = TypeVar("_T")


@runtime_checkable
class Clock(Protocol):
    """A source of the current time. Only the server's clock counts (SECURITY.md 6)."""

    def now(self) -> dt.datetime:
        """Return the current time as an aware UTC datetime."""
        ...


@runtime_checkable
class EventSink(Protocol):
    """Receives audit events (ISM-1683). Must not raise; must be thread-safe.

    Events never contain secrets, so a sink may write them anywhere.
    """

    def emit(self, event: Event) -> None:
        """Record one event."""
        ...


@runtime_checkable
class SMSSender(Protocol):
    """Sends one text message. Implement it over your SMS provider's API.

    mfakit calls it only after the challenge is stored, and treats any exception as a
    failed delivery (the challenge is withdrawn and :class:`~mfakit.DeliveryError` raised).
    The text contains the code: a sender must not log it.
    """

    def send_sms(self, to: str, text: str) -> None:
        """Send ``text`` to ``to`` (an E.164 number such as ``+61412345678``)."""
        ...


@runtime_checkable
class EmailSender(Protocol):
    """Sends one e-mail message (``From``, ``To`` and ``Subject`` already set).

    Same failure contract as :class:`SMSSender`; the body contains the code.
    """

    def send_email(self, message: EmailMessage) -> None:
        """Send ``message``."""
        ...


@runtime_checkable
class Store(Protocol):
    """Persistence for credentials, challenges and lock state.

    **The atomic contract.** Every record carries a ``version``. A ``put_*`` call is one
    atomic *conditional* write: it stores ``record`` if and only if the stored record with
    the same key has version ``record.version - 1`` (a missing record counts as version 0,
    so version 1 means "insert if absent"), and returns whether it did. It never
    overwrites a record it has not seen. ``delete_*`` likewise deletes only the version
    given. This single rule is what keeps replay protection, attempt counters and lockout
    exact under threads, processes and machines (SECURITY.md 4, 14): the caller reads,
    computes the next state purely, and writes conditionally, retrying on ``False``.

    **Units.** :meth:`update_subject` reads one subject's lock state and credentials (and
    one challenge), lets the facade decide, and writes the outcome, all as one
    transaction that no other unit of the same subject interleaves with. It is how a code
    is charged, compared and recorded in a single round of work (the verification hot
    path) while the attempt is still charged before anyone learns the comparison's result
    (SECURITY.md 14).

    Reads return the stored record or ``None``; they never return partial records.
    Implementations must be safe to call from many threads. Backends that fail raise
    :class:`mfakit.exceptions.StoreError` (or a subclass), never leave half a write, and
    never log record contents. :class:`mfakit.testing.StoreContract` checks all of this.
    """

    def get_credential(self, credential_id: str) -> Credential | None:
        """Return the credential with this id, or ``None``."""
        ...

    def list_credentials(self, subject_id: str) -> Sequence[Credential]:
        """Return every credential of a subject (pending and active), oldest first."""
        ...

    def iter_credentials(self) -> Iterator[Credential]:
        """Yield every credential in the store (for key rotation and reports)."""
        ...

    def put_credential(self, credential: Credential) -> bool:
        """Conditionally write ``credential`` (see the atomic contract)."""
        ...

    def delete_credential(self, credential_id: str, *, version: int) -> bool:
        """Delete the credential if its stored version is ``version``."""
        ...

    def get_challenge(self, challenge_id: str) -> Challenge | None:
        """Return the challenge with this id, or ``None``."""
        ...

    def put_challenge(self, challenge: Challenge) -> bool:
        """Conditionally write ``challenge`` (see the atomic contract)."""
        ...

    def delete_challenge(self, challenge_id: str, *, version: int) -> bool:
        """Delete the challenge if its stored version is ``version``."""
        ...

    def purge_challenges(self, *, now: dt.datetime) -> int:
        """Delete challenges no longer answerable at ``now`` (``expires_at <= now``).

        Returns how many were deleted. A challenge expires *at* ``expires_at``, the same
        instant verification starts refusing it.
        """
        ...

    def get_lock_state(self, subject_id: str) -> LockState:
        """Return the subject's lock state; a fresh ``LockState(subject_id)`` if none."""
        ...

    def put_lock_state(self, state: LockState) -> bool:
        """Conditionally write ``state`` (see the atomic contract)."""
        ...

    def get_quota(self, key: str) -> QuotaState:
        """Return the send-quota state for ``key``; a fresh ``QuotaState(key)`` if none."""
        ...

    def put_quota(self, state: QuotaState) -> bool:
        """Conditionally write ``state`` (see the atomic contract)."""
        ...

    def update_subject(
        self,
        subject_id: str,
        work: Callable[[SubjectRecords], tuple[Changes, _T]],
        *,
        challenge_id: str | None = None,
    ) -> _T:
        """Read a subject's records, call ``work`` on them and write its changes, atomically.

        The store reads the subject's lock state, all its credentials and (if
        ``challenge_id`` is given) that challenge, if it belongs to the subject, calls
        ``work`` with them, and writes the :class:`~mfakit.Changes` it returns, every one
        conditionally, in the same transaction. Units of the same subject run one after
        another: no unit reads records another has not finished writing, so what ``work``
        decides from the lock state (how many attempts are charged, whether the subject
        is locked) is exact across threads, processes and machines. Writes made outside a
        unit (``put_*``) are not held back; the unit's conditional writes detect them.

        ``work`` must be a pure function of its argument: no I/O, no writes. If a write
        of the changes fails its condition, the store writes none of them and calls
        ``work`` again on freshly read records (so it may run more than once; only the
        run whose changes were written counts). An exception from ``work`` leaves
        everything unwritten and propagates unchanged.

        Args:
            subject_id: Whose records to read and change.
            work: Decides the changes from the records; returns ``(changes, result)``.
            challenge_id: A challenge to read with the subject's records.

        Returns:
            The ``result`` of the run of ``work`` whose changes were written.

        Raises:
            StoreError: The backend failed; nothing was written. A change for another
                subject is refused this way too.
            ConcurrencyConflict: The changes kept losing to concurrent writes.
        """
        ...
