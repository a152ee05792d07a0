"""The factor family: what every factor shares.

Factors are pure. They turn a record and a response into a new record (or raise), using
only the keyring and the time they are given. They never touch a store, a sender or the
clock: the :class:`~mfakit.MFA` facade does all I/O and persists their results with
conditional writes. That split is what lets one store contract serve every factor.
"""

from __future__ import annotations

import abc
import datetime as dt
from typing import ClassVar

from mfakit._models import Credential, FactorKind
from mfakit.exceptions import ConfigurationError

__all__ = ["Factor", "FactorSetup", "check_prompt_options", "secret_aad"]


def check_prompt_options(
    owner: str, *, max_attempts: object, purpose: object, challenge_ttl: object
) -> None:
    """Validate the options every knowledge factor shares.

    Raises:
        ConfigurationError: Attempts outside 1-100, an unknown purpose, or a TTL that is
            not a positive timedelta.
    """
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int):
        raise ConfigurationError(f"{owner} max_attempts must be int")
    if not 1 <= max_attempts <= 100:
        raise ConfigurationError(f"{owner} max_attempts must be 1 to 100")
    if purpose not in ("recovery", "fallback"):
        raise ConfigurationError(f"{owner} purpose must be 'recovery' or 'fallback'")
    if not isinstance(challenge_ttl, dt.timedelta) or challenge_ttl <= dt.timedelta(0):
        raise ConfigurationError(f"{owner} challenge_ttl must be a positive timedelta")


def secret_aad(credential: Credential) -> bytes:
    """Associated data binding a credential's encrypted secret to that credential.

    A blob copied onto another credential, another subject or another factor fails to
    decrypt (SECURITY.md 18).
    """
    return b"\x1f".join(
        (
            b"mfakit/credential/v1",
            credential.id.encode(),
            credential.subject_id.encode(),
            credential.factor.encode(),
        )
    )


class FactorSetup:
    """Base of the per-factor enrolment requests (``TOTP.setup(...)``)."""

    factor: ClassVar[str]


class Factor(abc.ABC):
    """Base class of mfakit's factors.

    Attributes:
        name: Identifier used in challenges, credentials and policies (``"totp"``).
        kind: Possession or knowledge.
        challenge_ttl: How long a challenge stays answerable.
        max_attempts: Attempts allowed against one challenge (the subject-wide lockout
            applies on top).
    """

    name: ClassVar[str]
    kind: ClassVar[FactorKind]
    challenge_ttl: dt.timedelta
    max_attempts: int
