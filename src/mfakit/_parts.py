"""What the facade's mixins (``_messaging``, ``_knowledge``) use from :class:`~mfakit.MFA`.

Declarations for the type checker only: at run time this class is empty, and the methods
come from ``_service.MFA`` (and ``_withdraw`` from the messaging mixin).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from mfakit._models import Challenge, Credential, EventType, LockState, Subject, Verification
    from mfakit.exceptions import ExpiredCode, MFAError
    from mfakit.factors._base import Factor
    from mfakit.hazmat.secretbox import Keyring
    from mfakit.typing import Clock, Store

__all__ = ["MAX_WRITE_RETRIES", "FacadeParts"]

_T = TypeVar("_T")

#: Conditional writes retried this many times before giving up. Contention resolves in a
#: handful of rounds; the bound only stops a broken store from spinning forever.
MAX_WRITE_RETRIES = 1000


class FacadeParts:
    """The facade's shared state and helpers, as seen by its mixins."""

    if TYPE_CHECKING:
        store: Store
        keyring: Keyring
        clock: Clock

        def factor(self, name: str) -> Factor: ...
        def _emit(self, type_: EventType, subject: Subject | None, **fields: object) -> None: ...
        def _subject(self, subject: object) -> Subject: ...
        def _owned_credential(self, subject: Subject, credential_id: object) -> Credential: ...
        def _charge(self, subject: Subject, now: dt.datetime, **fields: object) -> LockState: ...
        def _charge_challenge(self, challenge: Challenge) -> Challenge: ...
        def _succeeded(self, subject: Subject, charged: LockState | None = None) -> None: ...
        def _failed(
            self, subject: Subject, charged: LockState, exc: MFAError, **fields: object
        ) -> None: ...
        def _withdraw(self, challenge_id: str, version: int | None = None) -> None: ...
        def _expired(self, subject: Subject, message: str, **fields: object) -> ExpiredCode: ...
        def _verified(
            self,
            subject: Subject,
            factor: Factor,
            challenge_id: str | None,
            credential_id: str | None,
            now: dt.datetime,
            *,
            recovery: bool = False,
        ) -> Verification: ...
        def _update(
            self,
            read: Callable[[], _T | None],
            step: Callable[[_T], _T | None],
            write: Callable[[_T], bool],
        ) -> _T | None: ...
