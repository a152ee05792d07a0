"""argon2id hashing of low-entropy secrets: PINs and answers (SECURITY.md 21, 22).

SECURITY.md 21: "PINs and answers: argon2id, m >= 19456 KiB, t >= 2, p >= 1, unique salt,
rehash when the parameters change (OWASP password storage cheat sheet)."
:class:`SecretHasher` enforces exactly that floor: it refuses weaker parameters, draws a fresh
salt from :mod:`secrets` for every hash, stores the result as a standard PHC string
(``$argon2id$v=19$m=...,t=...,p=...$salt$hash``) and tells, through
:meth:`SecretHasher.needs_rehash`, when a stored hash was made with other parameters so the host
can rehash it at the next successful verification.

:meth:`SecretHasher.dummy_verify` does the same argon2 work as a real verification and always
fails; a caller uses it when the subject is unknown or has no such secret, so the time taken
does not reveal which case it was.

argon2-cffi is imported lazily, on the first hash or verification: importing this module (and
so ``import mfakit``) stays cheap for hosts that never use PINs or answers.

This module makes no policy decisions: it hashes the ``str`` it is given as UTF-8. Normalising
answers (case, spaces, Unicode form) is the caller's job, and must be the same at enrolment and
at verification.
"""

from __future__ import annotations

import base64
import secrets
import threading
from typing import TYPE_CHECKING, Final

from mfakit.exceptions import ConfigurationError, InvalidInput, InvalidType

if TYPE_CHECKING:
    from argon2 import PasswordHasher

__all__ = [
    "MAX_SECRET_LENGTH",
    "OWASP_MIN_MEMORY_COST",
    "OWASP_MIN_PARALLELISM",
    "OWASP_MIN_TIME_COST",
    "SecretHasher",
]

#: OWASP floor for argon2id (password storage cheat sheet): memory in KiB ...
OWASP_MIN_MEMORY_COST: Final = 19456
#: ... iterations ...
OWASP_MIN_TIME_COST: Final = 2
#: ... and lanes.
OWASP_MIN_PARALLELISM: Final = 1
#: Longest secret accepted, in characters.
MAX_SECRET_LENGTH: Final = 1024

_MIN_SALT_LEN: Final = 16
_MIN_HASH_LEN: Final = 16
_ARGON2_VERSION: Final = 19  # 0x13, the current (and only non-legacy) Argon2 version
_PREFIX: Final = "$argon2id$"


def _b64(data: bytes) -> str:
    """Unpadded standard base64, as PHC strings use."""
    return base64.b64encode(data).rstrip(b"=").decode("ascii")


def _check_secret(secret: object) -> str:
    """Validate a secret before any argon2 work.

    The checks depend only on the submitted value, never on a stored hash, so they reveal
    nothing about any subject.

    Raises:
        InvalidType: If ``secret`` is not a ``str``.
        InvalidInput: If it is empty or longer than :data:`MAX_SECRET_LENGTH` characters.
    """
    if not isinstance(secret, str):
        raise InvalidType(f"a secret must be str, not {type(secret).__name__}")
    if not secret:
        raise InvalidInput("a secret must not be empty")
    if len(secret) > MAX_SECRET_LENGTH:
        raise InvalidInput(f"a secret must be at most {MAX_SECRET_LENGTH} characters")
    return secret


def _check_encoded(encoded: object) -> str:
    if not isinstance(encoded, str):
        raise InvalidType(f"a stored hash must be str, not {type(encoded).__name__}")
    return encoded


class SecretHasher:
    """Hash and verify PINs and answers with argon2id (SECURITY.md 21).

    Parameters below the OWASP floor (``m=19456`` KiB, ``t=2``, ``p=1``) are refused, also
    in tests: use :meth:`owasp_minimum` where speed matters. The defaults (``m=65536`` KiB,
    ``t=3``, ``p=4``) are above the floor.

    Instances are immutable and thread-safe. ``repr`` shows the parameters only; no method
    logs or echoes a secret or a stored hash (SECURITY.md 22).

    Args:
        time_cost: Iterations, at least 2.
        memory_cost: Memory in KiB, at least 19456 and at least ``8 * parallelism``.
        parallelism: Lanes, at least 1.
        hash_len: Length of the digest in bytes, at least 16.
        salt_len: Length of the random salt in bytes, at least 16.

    Raises:
        InvalidType: If a parameter is not an ``int``.
        ConfigurationError: If a parameter is below its floor.
    """

    __slots__ = (
        "_calls",
        "_dummy_hash",
        "_hash_len",
        "_lock",
        "_memory_cost",
        "_parallelism",
        "_password_hasher",
        "_salt_len",
        "_time_cost",
    )

    def __init__(
        self,
        *,
        time_cost: int = 3,
        memory_cost: int = 65536,
        parallelism: int = 4,
        hash_len: int = 32,
        salt_len: int = 16,
    ) -> None:
        params = {
            "time_cost": (time_cost, OWASP_MIN_TIME_COST),
            "memory_cost": (memory_cost, OWASP_MIN_MEMORY_COST),
            "parallelism": (parallelism, OWASP_MIN_PARALLELISM),
            "hash_len": (hash_len, _MIN_HASH_LEN),
            "salt_len": (salt_len, _MIN_SALT_LEN),
        }
        for name, (value, floor) in params.items():
            if not isinstance(value, int) or isinstance(value, bool):
                raise InvalidType(f"{name} must be int, not {type(value).__name__}")
            if value < floor:
                raise ConfigurationError(
                    f"{name}={value} is below the OWASP floor for argon2id ({name} >= {floor})"
                )
        if memory_cost < 8 * parallelism:
            raise ConfigurationError("argon2 needs memory_cost >= 8 * parallelism")
        self._time_cost = time_cost
        self._memory_cost = memory_cost
        self._parallelism = parallelism
        self._hash_len = hash_len
        self._salt_len = salt_len
        self._lock = threading.Lock()
        self._calls = 0
        self._password_hasher: PasswordHasher | None = None
        self._dummy_hash: str | None = None

    @classmethod
    def owasp_minimum(cls) -> SecretHasher:
        """Return a hasher at the OWASP floor: ``m=19456`` KiB, ``t=2``, ``p=1``.

        The cheapest parameters this class accepts; fine for production on a constrained
        host, and what the test suite uses for speed.

        Returns:
            The hasher.
        """
        return cls(
            time_cost=OWASP_MIN_TIME_COST,
            memory_cost=OWASP_MIN_MEMORY_COST,
            parallelism=OWASP_MIN_PARALLELISM,
        )

    # -- parameters --------------------------------------------------------------------

    @property
    def time_cost(self) -> int:
        """Iterations."""
        return self._time_cost

    @property
    def memory_cost(self) -> int:
        """Memory in KiB."""
        return self._memory_cost

    @property
    def parallelism(self) -> int:
        """Lanes."""
        return self._parallelism

    @property
    def hash_len(self) -> int:
        """Digest length in bytes."""
        return self._hash_len

    @property
    def salt_len(self) -> int:
        """Salt length in bytes."""
        return self._salt_len

    @property
    def calls(self) -> int:
        """How many argon2 computations :meth:`hash`, :meth:`verify` and :meth:`dummy_verify`
        have started on this instance.

        Instrumentation for tests: it shows, by counting hash calls, that an unknown subject
        costs the same argon2 work as a known one, and that a wrong secret is not rejected
        before hashing. Calls refused by input validation are not counted.
        """
        return self._calls

    def __repr__(self) -> str:
        return (
            f"SecretHasher(time_cost={self._time_cost}, memory_cost={self._memory_cost}, "
            f"parallelism={self._parallelism}, hash_len={self._hash_len}, "
            f"salt_len={self._salt_len})"
        )

    # -- operations --------------------------------------------------------------------

    def hash(self, secret: str) -> str:
        """Hash a secret with argon2id and a fresh random salt.

        Args:
            secret: The PIN or answer, already normalised by the caller.

        Returns:
            A PHC string, ``$argon2id$v=19$m=...,t=...,p=...$salt$hash``.

        Raises:
            InvalidType: If ``secret`` is not a ``str``.
            InvalidInput: If ``secret`` is empty or longer than 1024 characters.
        """
        _check_secret(secret)
        hasher = self._hasher()
        salt = secrets.token_bytes(self._salt_len)
        self._count()
        return hasher.hash(secret, salt=salt)

    def verify(self, encoded: str, secret: str) -> bool:
        """Check a secret against a stored hash.

        A wrong secret costs the full argon2 computation; nothing about the stored hash is
        compared before it. The comparison of digests is constant-time (libargon2).

        Args:
            encoded: The stored PHC string, as returned by :meth:`hash`. Its own parameters
                are used, so hashes made with older parameters still verify; see
                :meth:`needs_rehash`.
            secret: The submitted PIN or answer, normalised as at enrolment.

        Returns:
            ``True`` if ``secret`` matches, ``False`` if it does not.

        Raises:
            InvalidType: If ``encoded`` or ``secret`` is not a ``str``.
            InvalidInput: If ``secret`` is empty or too long, or if ``encoded`` is not a
                well-formed argon2id hash (a fault of the host or its store, not of the
                person typing).
        """
        _check_encoded(encoded)
        _check_secret(secret)
        if not encoded.startswith(_PREFIX) or not encoded.isascii():
            raise InvalidInput("the stored hash is not an argon2id PHC string")
        return self._verify(encoded, secret)

    def dummy_verify(self, secret: str) -> bool:
        """Do the work of :meth:`verify` against a throw-away hash, and fail.

        Call this when the subject is unknown or has no such secret, so that the response
        takes as long as a real verification (SECURITY.md 16, 36). The throw-away hash has
        this hasher's parameters and a random salt and digest, created once per instance.

        Args:
            secret: The submitted PIN or answer.

        Returns:
            Always ``False``.

        Raises:
            InvalidType: If ``secret`` is not a ``str``.
            InvalidInput: If ``secret`` is empty or too long (as :meth:`verify`).
        """
        _check_secret(secret)
        self._verify(self._dummy(), secret)
        return False

    def needs_rehash(self, encoded: str) -> bool:
        """Tell whether a stored hash should be recomputed with this hasher's parameters.

        Call it after a successful :meth:`verify`, while the secret is at hand, and store
        :meth:`hash` of it when this returns ``True`` (SECURITY.md 21).

        Args:
            encoded: The stored hash.

        Returns:
            ``True`` if it is not argon2id, or if any of its parameters (memory, time,
            parallelism, version, salt or digest length) differs from this hasher's.

        Raises:
            InvalidType: If ``encoded`` is not a ``str``.
            InvalidInput: If ``encoded`` claims to be argon2id but is malformed.
        """
        _check_encoded(encoded)
        if not encoded.startswith(_PREFIX):
            return True
        try:
            return self._hasher().check_needs_rehash(encoded)
        except ValueError:  # argon2.exceptions.InvalidHashError
            raise InvalidInput("the stored hash is not a well-formed argon2id hash") from None

    # -- internals ---------------------------------------------------------------------

    def _count(self) -> None:
        with self._lock:
            self._calls += 1

    def _hasher(self) -> PasswordHasher:
        """The argon2-cffi hasher, created (and argon2 imported) on first use."""
        hasher = self._password_hasher
        if hasher is None:
            from argon2 import PasswordHasher, Type

            hasher = PasswordHasher(
                time_cost=self._time_cost,
                memory_cost=self._memory_cost,
                parallelism=self._parallelism,
                hash_len=self._hash_len,
                salt_len=self._salt_len,
                type=Type.ID,
            )
            # Two threads may both build one; they are equivalent and stateless.
            self._password_hasher = hasher
        return hasher

    def _dummy(self) -> str:
        """A PHC string with this hasher's parameters that no secret matches.

        Salt and digest are random, so verifying against it costs a full argon2 computation
        and fails (but for a chance of ``2 ** (-8 * hash_len)``, which :meth:`dummy_verify`
        ignores anyway), without spending an argon2 computation to create it.
        """
        dummy = self._dummy_hash
        if dummy is None:
            dummy = (
                f"{_PREFIX}v={_ARGON2_VERSION}$m={self._memory_cost},t={self._time_cost},"
                f"p={self._parallelism}${_b64(secrets.token_bytes(self._salt_len))}"
                f"${_b64(secrets.token_bytes(self._hash_len))}"
            )
            self._dummy_hash = dummy
        return dummy

    def _verify(self, encoded: str, secret: str) -> bool:
        from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

        hasher = self._hasher()
        self._count()
        try:
            return hasher.verify(encoded, secret)
        except VerifyMismatchError:
            return False
        except (VerificationError, InvalidHashError):
            # Not echoed: a stored hash is offline-crackable material (SECURITY.md 22).
            raise InvalidInput("the stored hash is not a well-formed argon2id hash") from None
