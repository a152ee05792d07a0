"""Constant-time comparison and code normalisation.

Two rules from SECURITY.md live here because every factor needs them:

* secrets are compared with :func:`hmac.compare_digest`, never ``==`` (ASVS 5 11.2.4);
* user-typed codes are capped in length *before* any Unicode processing (huge input is a
  known denial of service in NFKC), normalised with NFKC, stripped of spaces and hyphens, and
  must then be exactly N ASCII digits. ``int()`` and ``str.isdigit()`` are never the
  validator: both accept Arabic-Indic and other non-ASCII digits (SECURITY.md 11).
"""

from __future__ import annotations

import hmac
import unicodedata
from typing import Final

from mfakit.exceptions import InvalidType, MalformedCode

__all__ = ["MAX_CODE_INPUT", "constant_time_equal", "normalize_code"]

#: Longest raw input considered at all. Generous for "123 456" or "1234-5678-90", and
#: small enough that NFKC never runs on megabytes.
MAX_CODE_INPUT: Final = 64

_ASCII_DIGITS: Final = frozenset("0123456789")
# Separators people type or paste: space, hyphen, and their common Unicode cousins. NFKC
# already folds the full-width forms and no-break spaces onto these.
_SEPARATORS: Final = str.maketrans("", "", " -\t\u2010\u2011\u2012\u2013\u2212")


def constant_time_equal(a: str | bytes, b: str | bytes) -> bool:
    """Compare two secrets in time independent of where they differ.

    Strings are compared as UTF-8 bytes (``hmac.compare_digest`` refuses non-ASCII ``str``).
    """
    a_bytes = a.encode("utf-8") if isinstance(a, str) else a
    b_bytes = b.encode("utf-8") if isinstance(b, str) else b
    return hmac.compare_digest(a_bytes, b_bytes)


def normalize_code(raw: object, *, digits: int) -> str:
    """Turn what a person typed into exactly ``digits`` ASCII digits.

    Args:
        raw: The submitted value. Must be ``str``.
        digits: The required number of digits.

    Returns:
        The normalised code.

    Raises:
        InvalidType: If ``raw`` is not a ``str`` (``bytes`` and ``int`` are refused: an
            ``int`` has already lost leading zeros).
        MalformedCode: If the value is too long, or not exactly ``digits`` ASCII digits
            after NFKC, removal of spaces and hyphens.
    """
    if not isinstance(raw, str):
        raise InvalidType(f"a code must be str, not {type(raw).__name__}")
    if len(raw) > MAX_CODE_INPUT:
        raise MalformedCode(f"code input longer than {MAX_CODE_INPUT} characters")
    if len(raw) == digits and raw.isascii() and raw.isdigit():
        return raw  # already canonical: NFKC and stripping would not change it
    code = unicodedata.normalize("NFKC", raw).strip().translate(_SEPARATORS)
    if len(code) != digits or not _ASCII_DIGITS.issuperset(code):
        raise MalformedCode(f"a code must be exactly {digits} ASCII digits")
    return code
