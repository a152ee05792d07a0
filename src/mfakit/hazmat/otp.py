"""HOTP (RFC 4226) and TOTP (RFC 6238) arithmetic.

Pure functions over bytes and integers. Keys are raw bytes (not base32); counters and time
steps are unbounded non-negative integers encoded as 64-bit big-endian values, as RFC 4226
section 5.1 requires, so times past 2038 (RFC 6238's last vector is in year 2603) work.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import math
import struct
from collections.abc import Sequence
from typing import Final, Literal

from mfakit.exceptions import InvalidInput, InvalidSecret, InvalidType

__all__ = [
    "ALGORITHMS",
    "MAX_SECRET_TEXT",
    "Algorithm",
    "decode_secret",
    "encode_secret",
    "hotp",
    "hotp_window",
    "time_step",
    "totp",
]

Algorithm = Literal["SHA1", "SHA256", "SHA512"]

#: Algorithm name -> ``hashlib`` digest name, as accepted by :func:`hmac.digest`.
ALGORITHMS: Final[dict[str, str]] = {"SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512"}

try:  # CPython's OpenSSL HMAC without the pure-Python wrapper: one key schedule per window.
    from _hashlib import hmac_new as _hmac_new
except ImportError:  # pragma: no cover - other interpreters
    _hmac_new = hmac.new  # type: ignore[assignment]

_MODULI: Final[dict[int, int]] = {d: 10**d for d in range(6, 11)}
_COUNTER: Final = struct.Struct(">Q")


def hotp(key: bytes, counter: int, *, digits: int = 6, algorithm: Algorithm = "SHA1") -> str:
    """Compute an HOTP value (RFC 4226 section 5.3, dynamic truncation).

    Args:
        key: The shared secret, raw bytes.
        counter: The moving factor, ``0 <= counter < 2**64``.
        digits: Length of the code, 6 to 10 (RFC 4226 R4 asks for at least 6).
        algorithm: ``"SHA1"`` (RFC 4226), ``"SHA256"`` or ``"SHA512"`` (RFC 6238).

    Returns:
        The code as a zero-padded string of ASCII digits.

    Raises:
        InvalidInput: On an unknown algorithm, unsupported length or out-of-range counter.
    """
    try:
        modulus = _MODULI[digits]
        digest_name = ALGORITHMS[algorithm]
        packed = _COUNTER.pack(counter)
    except (KeyError, struct.error) as exc:
        raise InvalidInput(
            f"unsupported HOTP parameters: digits={digits!r}, algorithm={algorithm!r}, "
            f"counter must be 0 <= counter < 2**64"
        ) from exc
    mac = hmac.digest(key, packed, digest_name)
    offset = mac[-1] & 0x0F
    binary = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(binary % modulus).zfill(digits)


def hotp_window(
    key: bytes, steps: Sequence[int], *, digits: int = 6, algorithm: Algorithm = "SHA1"
) -> list[str]:
    """HOTP values for several counters at once; equal to ``[hotp(key, s) for s in steps]``.

    The HMAC key schedule is computed once and copied per counter, which makes checking a
    TOTP drift window about a third cheaper than independent :func:`hotp` calls. Every
    value is computed: callers compare them all, with no early exit (SECURITY.md 5).

    Raises:
        InvalidInput: As :func:`hotp`.
    """
    try:
        modulus = _MODULI[digits]
        digest_name = ALGORITHMS[algorithm]
        packed = [_COUNTER.pack(step) for step in steps]
    except (KeyError, struct.error) as exc:
        raise InvalidInput(
            f"unsupported HOTP parameters: digits={digits!r}, algorithm={algorithm!r}"
        ) from exc
    keyed = _hmac_new(key, digestmod=digest_name)
    codes = []
    for message in packed:
        state = keyed.copy()
        state.update(message)
        mac = state.digest()
        offset = mac[-1] & 0x0F
        binary = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
        codes.append(str(binary % modulus).zfill(digits))
    return codes


def time_step(unix_time: float, *, period: int = 30, t0: int = 0) -> int:
    """Return the RFC 6238 time step ``T = floor((unix_time - T0) / X)``.

    Raises:
        InvalidInput: When ``period`` is not positive, the time is not finite or it
            precedes ``t0``.
    """
    if period <= 0:
        raise InvalidInput(f"period must be positive, got {period!r}")
    if not math.isfinite(unix_time):
        raise InvalidInput("time must be a finite number of seconds")
    if unix_time < t0:
        raise InvalidInput("time precedes T0")
    return int((unix_time - t0) // period)


def totp(
    key: bytes,
    unix_time: float,
    *,
    period: int = 30,
    t0: int = 0,
    digits: int = 6,
    algorithm: Algorithm = "SHA1",
) -> str:
    """Compute a TOTP value (RFC 6238 section 4) for a Unix time in seconds."""
    return hotp(key, time_step(unix_time, period=period, t0=t0), digits=digits, algorithm=algorithm)


_B32_ALPHABET: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
_B32_EITHER_CASE: Final = _B32_ALPHABET | frozenset("abcdefghijklmnopqrstuvwxyz")
#: Longest base32 text accepted (a 64-byte SHA512 seed is 103 characters unpadded).
MAX_SECRET_TEXT: Final = 256


def encode_secret(key: bytes) -> str:
    """Encode raw key bytes as unpadded upper-case base32, as the Key URI format asks."""
    return base64.b32encode(key).decode("ascii").rstrip("=")


def decode_secret(text: object) -> bytes:
    """Decode a base32 secret typed or pasted by a person (SECURITY.md 39).

    Accepts either case, with or without ``=`` padding, and ASCII spaces between groups (the
    way apps display manual keys: ``JBSW Y3DP EHPK 3PXP``). Every other character is refused.

    Raises:
        InvalidType: If ``text`` is not ``str``.
        InvalidSecret: If it is empty, too long or not valid base32.
    """
    if not isinstance(text, str):
        raise InvalidType(f"a base32 secret must be str, not {type(text).__name__}")
    if len(text) > MAX_SECRET_TEXT:
        raise InvalidSecret(f"base32 secret longer than {MAX_SECRET_TEXT} characters")
    compact = text.replace(" ", "").rstrip("=")
    # Check before upper-casing: str.upper() maps non-ASCII look-alikes onto base32 letters
    # ("\u0131".upper() == "I", "\u00df".upper() == "SS").
    if not compact or not _B32_EITHER_CASE.issuperset(compact):
        raise InvalidSecret("a secret must be base32 (A-Z, 2-7), optionally padded with '='")
    if len(compact) % 8 in (1, 3, 6):
        # No whole number of bytes encodes to these lengths (RFC 4648 section 6).
        raise InvalidSecret("base32 secret has an impossible length")
    compact = compact.upper()
    padded = compact + "=" * (-len(compact) % 8)
    try:
        return base64.b32decode(padded, casefold=False)
    except binascii.Error as exc:  # pragma: no cover - excluded by the checks above
        raise InvalidSecret("a secret must be valid base32") from exc
