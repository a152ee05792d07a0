"""The protocols a host application implements (or picks a ready implementation of).

These are structural types (:class:`typing.Protocol`): any object with the right methods
fits, no inheritance needed. mfakit ships implementations of each: :class:`MemoryStore`,
:class:`SystemClock` / :class:`~mfakit.testing.FakeClock`, and the event sinks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from mfakit._models import Challenge, Credential, Event, LockState, QuotaState

if TYPE_CHECKING:
    from email.message import EmailMessage

__all__ = ["Clock", "EmailSender", "EventSink", "SMSSender", "Store"]


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
