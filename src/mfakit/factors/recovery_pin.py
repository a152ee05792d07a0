"""The recovery PIN: the practice suite's way in when the phone is lost.

A PIN is a *knowledge* factor: with a password it is never multi-factor authentication
(NIST SP 800-63B; SECURITY.md 24), so by default it serves only for recovery, after which
the subject must set up a possession factor again. Rules (SECURITY.md 21, 23):

* digits only after normalisation, 6 to 12 by default (ISM-1559 asks for at least 6), never
  truncated;
* refused when trivially guessable: one repeated digit, ascending or descending runs,
  repeated short patterns, a built-in list of the most common PINs, and the subject's own
  phone digits where known;
* stored as an argon2id hash (OWASP parameters or stronger), re-hashed on use when the
  parameters change; a wrong PIN, a right one and a subject without a PIN cost the same
  argon2 work.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import unicodedata
from collections.abc import Iterable
from typing import ClassVar, Final, Literal

from mfakit._models import Credential, CredentialStatus, FactorKind, Subject, new_id
from mfakit.exceptions import ConfigurationError, InvalidInput, InvalidType, WeakSecret
from mfakit.factors._base import Factor, FactorSetup, check_prompt_options
from mfakit.hazmat.hashing import SecretHasher

__all__ = ["COMMON_PINS", "PINSetup", "RecoveryPIN"]

#: Frequently chosen 6-digit PINs that the repeat and run rules do not already catch:
#: keypad lines and diagonals, mirrored and paired digits, dates-like and famous numbers.
COMMON_PINS: Final = frozenset(
    {
        "121212",
        "112233",
        "123123",
        "159753",
        "147258",
        "123321",
        "696969",
        "789456",
        "102030",
        "520520",
        "131313",
        "000001",
        "111222",
        "212121",
        "101010",
        "112211",
        "100200",
        "321321",
        "252525",
        "232323",
        "200000",
        "110110",
        "999000",
        "786786",
        "147852",
        "258369",
        "963852",
        "741852",
        "123654",
        "456789",
        "987654",
        "135790",
        "246810",
        "102938",
        "010203",
        "090909",
        "080808",
        "070707",
        "050505",
        "030303",
        "020202",
        "001122",
        "101101",
        "121314",
        "010101",
        "112358",
        "314159",
        "142857",
    }
)
_MAX_INPUT: Final = 64


def normalize_pin(raw: object) -> str:
    """NFKC, spaces removed, then ASCII digits only. Nothing is truncated.

    Raises:
        InvalidType: Not a ``str``.
        InvalidInput: Too long, or anything but digits after normalisation.
    """
    if not isinstance(raw, str):
        raise InvalidType(f"a PIN must be str, not {type(raw).__name__}")
    if len(raw) > _MAX_INPUT:
        raise InvalidInput("PIN input is too long")
    pin = unicodedata.normalize("NFKC", raw).replace(" ", "").strip()
    if not pin or not (pin.isascii() and pin.isdigit()):
        raise InvalidInput("a PIN must be made of the digits 0-9")
    return pin


def _is_run(pin: str, step: int) -> bool:
    return all((int(b) - int(a)) % 10 == step % 10 for a, b in itertools.pairwise(pin))


def _repeats_pattern(pin: str) -> bool:
    return any(
        len(pin) % size == 0 and pin == pin[:size] * (len(pin) // size)
        for size in range(1, len(pin) // 2 + 1)
    )


@dataclasses.dataclass(frozen=True, slots=True)
class PINSetup(FactorSetup):
    """A request to set the recovery PIN. ``repr`` hides the PIN."""

    factor: ClassVar[str] = "recovery_pin"
    pin: str = dataclasses.field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.pin, str):
            raise InvalidType(f"a PIN must be str, not {type(self.pin).__name__}")


class RecoveryPIN(Factor):
    """A recovery PIN, argon2id-hashed.

    Args:
        min_length: Shortest PIN, at least 6 (ISM-1559).
        max_length: Longest PIN.
        hasher: The argon2id hasher (default: argon2-cffi's RFC 9106 low-memory profile,
            above the OWASP floor).
        max_attempts: Attempts against one challenge; every attempt also counts against
            the subject's lockout shared with all factors (SECURITY.md 17).
        purpose: ``"recovery"`` (default: a success tells the host the subject must set up
            a factor again) or ``"fallback"``.
        challenge_ttl: How long a PIN prompt stays answerable.

    Raises:
        ConfigurationError: On unsafe settings.
    """

    name: ClassVar[str] = "recovery_pin"
    kind: ClassVar[FactorKind] = FactorKind.KNOWLEDGE

    def __init__(
        self,
        *,
        min_length: int = 6,
        max_length: int = 12,
        hasher: SecretHasher | None = None,
        max_attempts: int = 3,
        purpose: Literal["recovery", "fallback"] = "recovery",
        challenge_ttl: dt.timedelta = dt.timedelta(minutes=10),
    ) -> None:
        check_prompt_options(
            "RecoveryPIN",
            max_attempts=max_attempts,
            purpose=purpose,
            challenge_ttl=challenge_ttl,
        )
        for label, value in (("min_length", min_length), ("max_length", max_length)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigurationError(f"RecoveryPIN {label} must be int")
        if min_length < 6:
            raise ConfigurationError("a recovery PIN needs at least 6 digits (ISM-1559)")
        if max_length < min_length or max_length > _MAX_INPUT:
            raise ConfigurationError("RecoveryPIN max_length must be >= min_length and <= 64")
        if hasher is not None and not isinstance(hasher, SecretHasher):
            raise ConfigurationError("hasher must be a SecretHasher")
        self.min_length = min_length
        self.max_length = max_length
        self.hasher = hasher if hasher is not None else SecretHasher()
        self.max_attempts = max_attempts
        self.purpose = purpose
        self.challenge_ttl = challenge_ttl

    def __repr__(self) -> str:
        return f"RecoveryPIN(min_length={self.min_length}, max_length={self.max_length})"

    @staticmethod
    def setup(pin: str) -> PINSetup:
        """Describe setting (or replacing) the recovery PIN for :meth:`mfakit.MFA.enroll`."""
        return PINSetup(pin=pin)

    def check_strength(self, pin: str, *, avoid: Iterable[str] = ()) -> str:
        """Normalise ``pin`` and refuse it if trivially guessable (SECURITY.md 23).

        Args:
            pin: As typed.
            avoid: Digit strings the PIN must not contain or be contained in (the
                subject's phone numbers).

        Returns:
            The normalised PIN.

        Raises:
            InvalidInput: Not digits, or the wrong length.
            WeakSecret: Guessable; the message says why, without repeating the PIN.
        """
        normalized = normalize_pin(pin)
        if not self.min_length <= len(normalized) <= self.max_length:
            raise InvalidInput(f"a PIN must have {self.min_length} to {self.max_length} digits")
        if _repeats_pattern(normalized):
            raise WeakSecret("the PIN repeats a digit or a short pattern")
        if _is_run(normalized, 1) or _is_run(normalized, -1):
            raise WeakSecret("the PIN is a run of consecutive digits")
        if normalized in COMMON_PINS:
            raise WeakSecret("the PIN is one of the most common PINs")
        for digits in avoid:
            tail = digits[-6:]
            if len(tail) >= 6 and (tail in normalized or normalized in digits):
                raise WeakSecret("the PIN is taken from the subject's phone number")
        return normalized

    def begin(
        self, subject: Subject, setup: PINSetup, *, now: dt.datetime, avoid: Iterable[str]
    ) -> Credential:
        """The active PIN credential (argon2id hash in ``secret``)."""
        normalized = self.check_strength(setup.pin, avoid=avoid)
        return Credential(
            id=new_id("cr"),
            subject_id=subject.id,
            tenant=subject.tenant,
            factor=self.name,
            label="Recovery PIN",
            status=CredentialStatus.ACTIVE,
            created_at=now,
            confirmed_at=now,
            params={"length": len(normalized)},
            secret=self.hasher.hash(normalized).encode("ascii"),
        )

    def matches(self, credential: Credential | None, raw: str) -> bool:
        """Check a PIN with the full argon2 work, also when there is no credential.

        Malformed input is refused by the caller before this; here every path costs one
        argon2 verification, so timing shows neither existence nor closeness.
        """
        try:
            pin = normalize_pin(raw)
        except InvalidInput:
            pin = raw if isinstance(raw, str) and raw else "0"
        if credential is None:
            return self.hasher.dummy_verify(pin)
        return self.hasher.verify(credential.secret.decode("ascii"), pin)

    def rehashed(self, credential: Credential, raw: str) -> Credential | None:
        """The credential with a fresh hash if the parameters changed, else ``None``."""
        if not self.hasher.needs_rehash(credential.secret.decode("ascii")):
            return None
        return dataclasses.replace(
            credential,
            secret=self.hasher.hash(normalize_pin(raw)).encode("ascii"),
            version=credential.version + 1,
        )
