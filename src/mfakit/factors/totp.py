"""Authenticator apps: time-based one-time passwords (RFC 6238).

The factor is pure: :meth:`TOTP.begin` turns a setup request into a pending credential and
the secret to show once; :meth:`TOTP.check` turns a credential and a normalised code into
the credential's next state (with the accepted time step recorded) or raises. The facade
stores the result with one conditional write, which is what makes replay protection hold
across threads and processes (RFC 6238 section 5.2; SECURITY.md 3, 4).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hmac
import secrets
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final, TextIO

from mfakit._models import Credential, CredentialStatus, FactorKind, Subject, new_id
from mfakit.exceptions import (
    ConfigurationError,
    InvalidCode,
    InvalidInput,
    InvalidSecret,
    InvalidType,
    ReplayedCode,
    UnsupportedParameterWarning,
)
from mfakit.factors._base import Factor, FactorSetup, secret_aad
from mfakit.hazmat.otp import ALGORITHMS, Algorithm, decode_secret, encode_secret, hotp, hotp_window

if TYPE_CHECKING:
    from mfakit.hazmat.secretbox import Keyring

__all__ = ["TOTP", "TOTPEnrollment", "TOTPSetup"]

#: RFC 4226 R6: shared secrets of at least 128 bits; 160 bits recommended.
MIN_IMPORTED_SECRET_BYTES: Final = 16
#: Default secret length per algorithm: the hash's output size, as RFC 6238's own seeds.
DEFAULT_SECRET_BYTES: Final[dict[str, int]] = {"SHA1": 20, "SHA256": 32, "SHA512": 64}
#: NIST SP 800-63B 5.1.4.1: never accept codes from more than two minutes of drift.
MAX_DRIFT_SECONDS: Final = 120
_MAX_LABEL: Final = 64


@dataclasses.dataclass(frozen=True, slots=True)
class TOTPSetup(FactorSetup):
    """A request to enrol an authenticator app. Build it with :meth:`TOTP.setup`.

    Attributes:
        label: Name the subject gives this authenticator ("Work phone").
        secret: An existing base32 secret to import, or ``None`` to generate one.
    """

    factor: ClassVar[str] = "totp"
    label: str = "Authenticator app"
    secret: str | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self) -> None:
        # Validated here, not only in TOTP.setup(), so a hand-built setup is checked too.
        label = self.label
        if not isinstance(label, str):
            raise InvalidType(f"label must be str, not {type(label).__name__}")
        if not label.strip() or len(label) > _MAX_LABEL or not label.isprintable():
            raise InvalidInput(f"label must be 1 to {_MAX_LABEL} printable characters")
        if self.secret is not None:
            raw = decode_secret(self.secret)
            if len(raw) < MIN_IMPORTED_SECRET_BYTES:
                raise InvalidSecret(
                    f"imported secret has {len(raw) * 8} bits; at least "
                    f"{MIN_IMPORTED_SECRET_BYTES * 8} are required (RFC 4226 R6)"
                )


@dataclasses.dataclass(frozen=True, slots=True)
class TOTPEnrollment:
    """A pending authenticator-app enrolment: what to show the subject, once.

    Show :attr:`secret` (the manual key) and the QR code, then call
    :meth:`mfakit.MFA.confirm` with a code the app displays. Neither ``repr`` nor ``str``
    shows the secret or the URI (which contains it).

    Attributes:
        id: The pending credential's id; pass it to ``confirm``.
        credential: The pending credential.
        secret: Base32 manual-entry key.
        uri: The ``otpauth://`` Key URI encoded in the QR code.
        expires_at: When the pending enrolment lapses.
    """

    id: str
    credential: Credential
    secret: str = dataclasses.field(repr=False)
    uri: str = dataclasses.field(repr=False)
    expires_at: dt.datetime

    @property
    def grouped_secret(self) -> str:
        """The manual key in groups of four, the way authenticator apps display keys."""
        return " ".join(self.secret[i : i + 4] for i in range(0, len(self.secret), 4))

    def qr_svg(self, **options: Any) -> str:
        """The QR code of :attr:`uri` as inline SVG (see :func:`mfakit.qr.qr_svg`)."""
        from mfakit.qr import qr_svg

        return qr_svg(self.uri, **options)

    def qr_png(self, **options: Any) -> bytes:
        """The QR code of :attr:`uri` as PNG bytes (see :func:`mfakit.qr.qr_png`)."""
        from mfakit.qr import qr_png

        return qr_png(self.uri, **options)

    def qr_data_uri(self, **options: Any) -> str:
        """The QR code as a ``data:`` URI for an ``<img src=...>``."""
        from mfakit.qr import qr_data_uri

        return qr_data_uri(self.uri, **options)

    def qr_terminal(self, out: TextIO | None = None) -> None:
        """Print the QR code to a terminal."""
        from mfakit.qr import qr_terminal

        qr_terminal(self.uri, out=out)


class TOTP(Factor):
    """Authenticator-app codes (RFC 6238), with replay protection and a drift window.

    Args:
        issuer: Shown by the authenticator app as the account's provider. No colons
            (Key URI format).
        algorithm: ``"SHA1"`` (default; the one every app supports), ``"SHA256"`` or
            ``"SHA512"``. Non-default values trigger :class:`UnsupportedParameterWarning`,
            because Google Authenticator and others silently ignore them.
        digits: 6 (default) or 8.
        period: Seconds per code, default 30.
        window: Steps of clock drift accepted either side of now. Default 1; 0 is the
            strict mode (ASVS 5 6.5.5). ``window * period`` on each side may not exceed
            two minutes in total (NIST SP 800-63B 5.1.4.1).
        secret_bytes: Length of generated secrets. Default: the hash's output size (20
            bytes = 160 bits for SHA1, RFC 4226 R6).
        enrollment_ttl: How long a pending enrolment waits for its first code.
        challenge_ttl: How long a sign-in challenge accepts codes.
        max_attempts: Attempts against one challenge.

    Raises:
        ConfigurationError: On unsupported or unsafe parameters.
    """

    name: ClassVar[str] = "totp"
    kind: ClassVar[FactorKind] = FactorKind.POSSESSION

    def __init__(
        self,
        issuer: str,
        *,
        algorithm: Algorithm = "SHA1",
        digits: int = 6,
        period: int = 30,
        window: int = 1,
        secret_bytes: int | None = None,
        enrollment_ttl: dt.timedelta = dt.timedelta(minutes=10),
        challenge_ttl: dt.timedelta = dt.timedelta(minutes=5),
        max_attempts: int = 5,
    ) -> None:
        if not isinstance(issuer, str) or not issuer.strip() or len(issuer) > 64:
            raise ConfigurationError("TOTP issuer must be a non-empty str of at most 64 chars")
        if ":" in issuer:
            raise ConfigurationError("TOTP issuer must not contain ':' (Key URI format)")
        for name, value in (
            ("digits", digits),
            ("period", period),
            ("window", window),
            ("max_attempts", max_attempts),
        ):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigurationError(f"TOTP {name} must be int")
        if secret_bytes is not None and (
            isinstance(secret_bytes, bool) or not isinstance(secret_bytes, int)
        ):
            raise ConfigurationError("TOTP secret_bytes must be int")
        for name, ttl in (("enrollment_ttl", enrollment_ttl), ("challenge_ttl", challenge_ttl)):
            if not isinstance(ttl, dt.timedelta) or ttl <= dt.timedelta(0):
                raise ConfigurationError(f"TOTP {name} must be a positive datetime.timedelta")
        if algorithm not in ALGORITHMS:
            raise ConfigurationError(f"TOTP algorithm must be one of {sorted(ALGORITHMS)}")
        if digits not in (6, 8):
            raise ConfigurationError("TOTP digits must be 6 or 8")
        if not isinstance(period, int) or not 15 <= period <= 120:
            raise ConfigurationError("TOTP period must be an int between 15 and 120 seconds")
        if not isinstance(window, int) or window < 0:
            raise ConfigurationError("TOTP window must be a non-negative int")
        if 2 * window * period > MAX_DRIFT_SECONDS:
            raise ConfigurationError(
                f"TOTP window of {window} steps of {period}s accepts more than "
                f"{MAX_DRIFT_SECONDS}s of drift (NIST SP 800-63B 5.1.4.1)"
            )
        size = DEFAULT_SECRET_BYTES[algorithm] if secret_bytes is None else secret_bytes
        if size < 20 or size > 64:
            raise ConfigurationError("TOTP secret_bytes must be 20 to 64 (>= 160 bits)")
        if max_attempts < 1 or max_attempts > 100:
            raise ConfigurationError("TOTP max_attempts must be 1 to 100")
        if (algorithm, digits, period) != ("SHA1", 6, 30):
            warnings.warn(
                f"TOTP with {algorithm}/{digits} digits/{period}s: many authenticator apps "
                "ignore these parameters and will show wrong codes",
                UnsupportedParameterWarning,
                stacklevel=2,
            )
        self.issuer = issuer
        self.algorithm: Algorithm = algorithm
        self.digits = digits
        self.period = period
        self.window = window
        self.secret_bytes = size
        self.enrollment_ttl = enrollment_ttl
        self.challenge_ttl = challenge_ttl
        self.max_attempts = max_attempts
        self._digest = ALGORITHMS[algorithm]
        self._modulus = 10**digits
        # Steps in order of preference: now, then the past, then the future.
        offsets = [0]
        for distance in range(1, window + 1):
            offsets += [-distance, distance]
        self._offsets: tuple[int, ...] = tuple(offsets)
        # A throwaway key for decoy_check, never stored and never shown.
        self._decoy_key = secrets.token_bytes(size)

    def __repr__(self) -> str:
        return (
            f"TOTP(issuer={self.issuer!r}, algorithm={self.algorithm!r}, "
            f"digits={self.digits}, period={self.period}, window={self.window})"
        )

    @staticmethod
    def setup(*, label: str = "Authenticator app", secret: str | None = None) -> TOTPSetup:
        """Describe an authenticator-app enrolment for :meth:`mfakit.MFA.enroll`.

        Args:
            label: The subject's name for the authenticator, at most 64 characters.
            secret: A base32 secret to import (at least 128 bits, RFC 4226 R6), or
                ``None`` (recommended) to generate 160+ random bits.

        Raises:
            InvalidType, InvalidInput: On a bad label.
            InvalidSecret: On a malformed or too-short secret.
        """
        return TOTPSetup(label=label, secret=secret)

    # pure operations ---------------------------------------------------------------------
    def params(self) -> Mapping[str, Any]:
        """The non-secret parameters stored with each credential."""
        return {"algorithm": self.algorithm, "digits": self.digits, "period": self.period}

    def begin(
        self,
        subject: Subject,
        setup: TOTPSetup,
        *,
        now: dt.datetime,
        keyring: Keyring,
    ) -> TOTPEnrollment:
        """Create the pending credential and the enrolment to show the subject.

        The secret comes from :mod:`secrets` (SECURITY.md 7) unless imported.
        """
        from mfakit.qr import build_uri

        raw = (
            decode_secret(setup.secret)
            if setup.secret is not None
            else secrets.token_bytes(self.secret_bytes)
        )
        pending = Credential(
            id=new_id("cr"),
            subject_id=subject.id,
            tenant=subject.tenant,
            factor=self.name,
            label=setup.label,
            status=CredentialStatus.PENDING,
            created_at=now,
            expires_at=now + self.enrollment_ttl,
            params=self.params(),
        )
        sealed = dataclasses.replace(pending, secret=keyring.encrypt(raw, aad=secret_aad(pending)))
        with warnings.catch_warnings():
            # The warning was given once, when this factor was configured.
            warnings.simplefilter("ignore", UnsupportedParameterWarning)
            uri = build_uri(
                secret=raw,
                account=subject.account_name,
                issuer=self.issuer,
                algorithm=self.algorithm,
                digits=self.digits,
                period=self.period,
            )
        return TOTPEnrollment(
            id=sealed.id,
            credential=sealed,
            secret=encode_secret(raw),
            uri=uri,
            expires_at=pending.expires_at,  # type: ignore[arg-type]
        )

    def check(
        self,
        credential: Credential,
        code: str,
        *,
        now: dt.datetime,
        keyring: Keyring,
    ) -> Credential:
        """Verify ``code`` against ``credential``; return the credential's next state.

        Every step of the window is computed and compared in constant time, with no early
        exit (SECURITY.md 5). Among matching steps later than the last accepted one, the
        current step is preferred, then the past, then the future. The returned credential
        records the accepted step; persisting it with a conditional write is what refuses
        the same code a second time (RFC 6238 section 5.2).

        Args:
            credential: An active or pending TOTP credential.
            code: Already normalised to exactly ``digits`` ASCII digits.
            now: Server time (SECURITY.md 6).
            keyring: Decrypts the secret.

        Returns:
            The credential with ``counter`` set to the accepted step, ``last_used_at`` set
            and ``version`` incremented (pending credentials become active).

        Raises:
            InvalidCode: No step in the window matches.
            ReplayedCode: Only steps at or before the last accepted one match.
            DecryptionError: The stored secret was tampered with or moved.
        """
        params = credential.params
        digits: int = params.get("digits", self.digits)
        algorithm: Algorithm = params.get("algorithm", self.algorithm)
        current = int(now.timestamp()) // params.get("period", self.period)
        last = credential.counter
        key = keyring.decrypt(credential.secret, aad=secret_aad(credential))
        # The current step first: a right, fresh code costs one HMAC. This early exit is
        # taken only on *success*, which the answer reveals anyway; every failure computes
        # and compares the whole window, so how long a wrong code takes does not depend on
        # how close it was or which step it matched (SECURITY.md 5, ASVS 5 11.2.4).
        current_matched = hmac.compare_digest(
            hotp(key, current, digits=digits, algorithm=algorithm), code
        )
        if current_matched and current > last:
            return credential.accepted(current, now)
        steps = [current + offset for offset in self._offsets[1:] if current + offset >= 0]
        expected = hotp_window(key, steps, digits=digits, algorithm=algorithm)
        accepted = -1
        replayed = current_matched  # matched, yet not after the last accepted step
        for step, value in zip(steps, expected, strict=False):
            matched = hmac.compare_digest(value, code)
            if matched and step > last:
                if accepted < 0:
                    accepted = step
            elif matched:
                replayed = True
        if accepted < 0:
            if replayed:
                raise ReplayedCode("code was already used (time step not after the last one)")
            raise InvalidCode("code does not match any step in the window")
        return credential.accepted(accepted, now)

    def decoy_check(self, code: str, now: dt.datetime) -> None:
        """Do the HMAC work of checking a wrong code, against a throwaway key.

        For a subject without a credential of this factor: the answer already reads like
        a wrong code, and with this the time it takes does too, so neither tells who has
        an authenticator app (SECURITY.md 36). The result is discarded.
        """
        current = int(now.timestamp()) // self.period
        steps = [current + offset for offset in self._offsets if current + offset >= 0]
        for value in hotp_window(
            self._decoy_key, steps, digits=self.digits, algorithm=self.algorithm
        ):
            hmac.compare_digest(value, code)
