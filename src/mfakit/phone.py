"""Mobile phone numbers for SMS codes: parsing, the region allow-list, E.164, masking.

Built on Google's libphonenumber metadata (the ``phonenumbers`` package, imported only when
a number is parsed). A number is accepted for SMS only if it is a valid MOBILE number (or
FIXED_LINE_OR_MOBILE where the numbering plan cannot tell the two apart, as in the US) of
the chosen region, has no extension, and that region is allowed (SECURITY.md 29). It is
then stored as E.164 (``+61412345678``), which is also the key for send quotas, so typing
the same number differently never escapes them (SECURITY.md 28).
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from typing import Final

from mfakit.exceptions import (
    InvalidPhoneNumber,
    InvalidType,
    NotAMobileNumber,
    UnparseablePhoneNumber,
    UnsupportedRegion,
)

#: Regions whose mobile ranges libphonenumber also validates for a larger neighbour: a
#: Guernsey, Isle of Man or Jersey mobile is valid "for GB" but is not a UK mobile.
_DEPENDENCIES: Final[dict[str, tuple[str, ...]]] = {"GB": ("GG", "IM", "JE")}
_SEPARATORS: Final = str.maketrans(
    {
        "\u00a0": " ",
        "\u2007": " ",
        "\u202f": " ",
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
    }
)

__all__ = ["DEFAULT_REGIONS", "MAX_PHONE_INPUT", "mask_e164", "parse_mobile"]

#: The practice-suite deployment: Australia, New Zealand and the United Kingdom.
DEFAULT_REGIONS: Final = frozenset({"AU", "NZ", "GB"})
#: Longest raw input looked at (libphonenumber itself stops at 250).
MAX_PHONE_INPUT: Final = 64


def parse_mobile(
    raw: object, region: object, *, allowed_regions: Collection[str] = DEFAULT_REGIONS
) -> str:
    """Validate a mobile number typed by a person and return it as E.164.

    Args:
        raw: What the person typed: ``"0412 345 678"``, ``"+61 412-345-678"``, ... Spaces,
            hyphens, dots and brackets are accepted.
        region: The country picked on the form (ISO 3166 alpha-2, ``"GB"`` for the UK), or
            ``None`` / ``"Other"`` when the person chose no supported country.
        allowed_regions: Regions SMS may be sent to.

    Returns:
        The number in E.164 form.

    Raises:
        InvalidType: ``raw`` or ``region`` is not a string.
        UnsupportedRegion: The region (picked, or of the number) is not allowed; the public
            message suggests an authenticator app.
        UnparseablePhoneNumber: Not a phone number at all (letters, too short, empty).
        InvalidPhoneNumber: Parses, but is not a valid number of that region (including a
            number valid only for another region, such as an Isle of Man mobile entered as
            GB), or carries an extension.
        NotAMobileNumber: Valid, but a landline, premium-rate, toll-free, shared-cost or
            other non-mobile number.
    """
    import phonenumbers

    if not isinstance(raw, str):
        raise InvalidType(f"phone number must be str, not {type(raw).__name__}")
    if region is not None and not isinstance(region, str):
        raise InvalidType(f"region must be str or None, not {type(region).__name__}")
    allowed = {r.upper() for r in allowed_regions}
    picked = (region or "").strip().upper()
    if picked not in allowed:
        raise UnsupportedRegion(f"region {region!r} is not in the SMS allow-list {sorted(allowed)}")
    if len(raw) > MAX_PHONE_INPUT:
        raise UnparseablePhoneNumber(f"phone number input longer than {MAX_PHONE_INPUT} characters")
    raw = raw.translate(_SEPARATORS)  # pasted numbers carry no-break spaces and dashes
    if not raw.strip() or not all(c.isascii() for c in raw):
        # libphonenumber folds non-ASCII digits; we refuse them like we do in codes.
        raise UnparseablePhoneNumber("a phone number must use ASCII digits")
    try:
        number = phonenumbers.parse(raw, picked)
    except phonenumbers.NumberParseException as exc:
        raise UnparseablePhoneNumber(f"not a phone number ({exc.error_type})") from None
    if number.extension:
        raise InvalidPhoneNumber("an SMS number cannot have an extension")
    if any(c.isalpha() for c in raw):
        # libphonenumber reads letters as keypad digits and skips words around a number;
        # a typo must not become somebody else's phone.
        raise UnparseablePhoneNumber("a phone number cannot contain letters")
    if not phonenumbers.is_valid_number_for_region(number, picked):
        owner = phonenumbers.region_code_for_number(number)
        if owner is not None and owner not in allowed:
            raise UnsupportedRegion(f"number belongs to region {owner}, not in the allow-list")
        raise InvalidPhoneNumber(f"not a valid number for region {picked}")
    kind = phonenumbers.number_type(number)
    if kind not in _mobile_types():
        raise NotAMobileNumber(f"number is not a mobile number (type {kind})")
    for dependency in _DEPENDENCIES.get(picked, ()):
        # Crown-dependency mobiles share +44 and validate for GB too; they are not GB's.
        if phonenumbers.is_valid_number_for_region(number, dependency):
            if dependency not in allowed:
                raise UnsupportedRegion(f"number is a {dependency} mobile, not in the allow-list")
            raise InvalidPhoneNumber(f"number is a {dependency} mobile, not a {picked} one")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


@functools.cache
def _mobile_types() -> frozenset[int]:
    import phonenumbers

    return frozenset(
        {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
    )


def mask_e164(e164: str) -> str:
    """A hint for the page: ``+61412345678`` -> ``+61 4•• ••• 678``.

    The number is written in its country's international format, then every digit but
    the first national digit and the last three is masked, so the hint confirms which
    phone without revealing the number (``+44 7••• •••456`` for a UK mobile).
    """
    import phonenumbers

    try:
        number = phonenumbers.parse(e164, None)
        country = f"+{number.country_code}"
        formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        national = formatted[len(country) :].strip()
    except phonenumbers.NumberParseException:
        country, national = "", e164.lstrip("+")
    digit_count = sum(c.isdigit() for c in national)
    shown_tail = 3 if digit_count >= 5 else 0
    seen = 0
    masked = []
    for char in national:
        if char.isdigit():
            seen += 1
            keep = (seen == 1 and shown_tail) or seen > digit_count - shown_tail
            masked.append(char if keep else "•")
        else:
            masked.append(char)
    return f"{country} {''.join(masked)}".strip()
