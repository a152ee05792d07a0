"""SMS numbers: :func:`mfakit.phone.parse_mobile` and :func:`mfakit.phone.mask_e164`.

The numbers come from libphonenumber's own example numbers
(``phonenumbers.example_number_for_type``), computed when the module is collected, and are
then formatted NATIONAL / INTERNATIONAL / E164 and decorated with spaces, hyphens, dots and
brackets. Nothing here is an invented subscriber number; the only literals are inputs that
are deliberately not phone numbers (``"call me"``, ``"000"``, ...).

Outcomes asserted by the table are exact classes, not just "some PhoneNumberError", because
the four refusals are meant to be distinct (unparseable, invalid, not-a-mobile,
unsupported-region).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import TypeAlias

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumber, PhoneNumberFormat, PhoneNumberType

from mfakit.exceptions import (
    InvalidInput,
    InvalidPhoneNumber,
    InvalidType,
    MFAError,
    NotAMobileNumber,
    PhoneNumberError,
    UnparseablePhoneNumber,
    UnsupportedRegion,
)
from mfakit.phone import DEFAULT_REGIONS, MAX_PHONE_INPUT, mask_e164, parse_mobile

Outcome: TypeAlias = "str | type[MFAError]"

MOBILE = PhoneNumberType.MOBILE
FIXED_LINE = PhoneNumberType.FIXED_LINE

#: Every libphonenumber type that is not MOBILE / FIXED_LINE_OR_MOBILE, by name.
NON_MOBILE_TYPES: dict[str, int] = {
    "FIXED_LINE": PhoneNumberType.FIXED_LINE,
    "PREMIUM_RATE": PhoneNumberType.PREMIUM_RATE,
    "TOLL_FREE": PhoneNumberType.TOLL_FREE,
    "SHARED_COST": PhoneNumberType.SHARED_COST,
    "VOIP": PhoneNumberType.VOIP,
    "PERSONAL_NUMBER": PhoneNumberType.PERSONAL_NUMBER,
    "PAGER": PhoneNumberType.PAGER,
    "UAN": PhoneNumberType.UAN,
    "VOICEMAIL": PhoneNumberType.VOICEMAIL,
}


# --- libphonenumber's example numbers, computed at collection time -------------------------


def example(region: str, kind: int) -> PhoneNumber:
    """libphonenumber's example number of ``kind`` for ``region`` (must exist)."""
    number = phonenumbers.example_number_for_type(region, kind)
    if number is None:
        raise LookupError(f"libphonenumber has no example of type {kind} for {region}")
    return number


def has_example(region: str, kind: int) -> bool:
    return phonenumbers.example_number_for_type(region, kind) is not None


def national(region: str, kind: int = MOBILE) -> str:
    """``"0412 345 678"``."""
    return phonenumbers.format_number(example(region, kind), PhoneNumberFormat.NATIONAL)


def international(region: str, kind: int = MOBILE) -> str:
    """``"+61 412 345 678"``."""
    return phonenumbers.format_number(example(region, kind), PhoneNumberFormat.INTERNATIONAL)


def e164(region: str, kind: int = MOBILE) -> str:
    """``"+61412345678"``."""
    return phonenumbers.format_number(example(region, kind), PhoneNumberFormat.E164)


def digits(text: str) -> str:
    """The ASCII digits of ``text``, in order."""
    return "".join(c for c in text if "0" <= c <= "9")


def national_digits(region: str, kind: int = MOBILE) -> str:
    """``"0412345678"``: the national form with its trunk prefix, digits only."""
    return digits(national(region, kind))


def nsn(region: str, kind: int = MOBILE) -> str:
    """``"412345678"``: the national significant number."""
    return phonenumbers.national_significant_number(example(region, kind))


def shift_digits(text: str, zero: int) -> str:
    """``text`` with its ASCII digits replaced by the digits starting at code point ``zero``."""
    return "".join(chr(zero + int(c)) if "0" <= c <= "9" else c for c in text)


# --- the table ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    id: str
    raw: object
    region: object
    allowed: frozenset[str] | None  # None: the default, DEFAULT_REGIONS
    expected: Outcome


def call(raw: object, region: object, allowed: Collection[str] | None) -> str:
    if allowed is None:
        return parse_mobile(raw, region)
    return parse_mobile(raw, region, allowed_regions=allowed)


def _accepted_mobiles() -> list[Row]:
    rows: list[Row] = []
    for region in ("AU", "NZ", "GB"):
        want = e164(region)
        rows += [
            Row(f"{region}-mobile-national", national(region), region, None, want),
            Row(f"{region}-mobile-international", international(region), region, None, want),
            Row(f"{region}-mobile-e164", want, region, None, want),
            Row(
                f"{region}-mobile-national-hyphens",
                national(region).replace(" ", "-"),
                region,
                None,
                want,
            ),
            Row(
                f"{region}-mobile-international-(0)-dots",
                f"+{example(region, MOBILE).country_code} (0) "
                + ".".join(international(region).split(" ")[1:]),
                region,
                None,
                want,
            ),
        ]
    au, au_digits = e164("AU"), national_digits("AU")
    rows += [
        Row("AU-mobile-brackets", f"({au_digits[:4]}) {au_digits[4:]}", "AU", None, au),
        Row("AU-mobile-square-brackets", f"[{au_digits[:4]}] {au_digits[4:]}", "AU", None, au),
        Row("AU-mobile-slashes", "/".join(national("AU").split(" ")), "AU", None, au),
        Row(
            "AU-mobile-extra-spaces",
            "   " + "    ".join(international("AU").split(" ")) + "  ",
            "AU",
            None,
            au,
        ),
        Row("AU-mobile-without-trunk-prefix", nsn("AU"), "AU", None, au),
        Row("AU-mobile-exactly-64-chars", national("AU").ljust(MAX_PHONE_INPUT), "AU", None, au),
        Row("AU-mobile-region-lowercase", national("AU"), "au", None, au),
        Row("AU-mobile-region-padded", national("AU"), " AU ", None, au),
        Row("AU-mobile-allowed-lowercase", national("AU"), "AU", frozenset({"au", "nz"}), au),
    ]
    return rows


def _not_mobiles() -> list[Row]:
    """Every non-mobile type libphonenumber has an example of, for AU, NZ and GB."""
    rows: list[Row] = []
    for region in ("AU", "NZ", "GB"):
        for name, kind in NON_MOBILE_TYPES.items():
            if has_example(region, kind):
                rows.append(
                    Row(f"{region}-{name}", national(region, kind), region, None, NotAMobileNumber)
                )
    rows.append(
        Row(
            "AU-FIXED_LINE-international",
            international("AU", FIXED_LINE),
            "AU",
            None,
            NotAMobileNumber,
        )
    )
    rows.append(Row("GB-FIXED_LINE-e164", e164("GB", FIXED_LINE), "GB", None, NotAMobileNumber))
    return rows


def _other_regions() -> list[Row]:
    gb_je = frozenset({"GB", "JE"})
    gb_im = frozenset({"GB", "IM"})
    us = frozenset({"US"})
    us_any = PhoneNumberType.FIXED_LINE_OR_MOBILE
    non_geo = phonenumbers.example_number_for_non_geo_entity(800)
    assert non_geo is not None
    non_geo_text = phonenumbers.format_number(non_geo, PhoneNumberFormat.INTERNATIONAL)
    return [
        # Crown dependencies share +44 with GB. JE/GG examples are valid only for JE/GG.
        Row("JE-mobile-as-GB-default", national("JE"), "GB", None, UnsupportedRegion),
        Row("JE-mobile-as-GB-JE-allowed", national("JE"), "GB", gb_je, InvalidPhoneNumber),
        Row("JE-mobile-as-JE-allowed", national("JE"), "JE", gb_je, e164("JE")),
        Row("GB-mobile-as-JE-allowed", national("GB"), "JE", gb_je, InvalidPhoneNumber),
        Row("GG-mobile-intl-as-GB-default", international("GG"), "GB", None, UnsupportedRegion),
        Row("GG-mobile-as-GG-allowed", national("GG"), "GG", frozenset({"GG"}), e164("GG")),
        # The IM landline example is valid only for IM: refused as GB, as it should be.
        Row("IM-landline-as-GB-default", national("IM", FIXED_LINE), "GB", None, UnsupportedRegion),
        Row(
            "IM-landline-as-GB-IM-allowed",
            national("IM", FIXED_LINE),
            "GB",
            gb_im,
            InvalidPhoneNumber,
        ),
        Row(
            "IM-landline-as-IM-allowed",
            national("IM", FIXED_LINE),
            "IM",
            frozenset({"IM"}),
            NotAMobileNumber,
        ),
        # The IM mobile example is valid for GB *and* IM in libphonenumber's metadata.
        Row("IM-mobile-as-GB-default", national("IM"), "GB", None, UnsupportedRegion),
        Row(
            "IM-mobile-as-GB-IM-allowed",
            national("IM"),
            "GB",
            gb_im,
            InvalidPhoneNumber,
        ),
        Row("IM-mobile-as-IM-GB-allowed", national("IM"), "IM", gb_im, e164("IM")),
        Row(
            "IM-mobile-as-IM-only-allowed",
            international("IM"),
            "IM",
            frozenset({"IM"}),
            e164("IM"),
        ),
        # US: mobile and landline cannot be told apart (FIXED_LINE_OR_MOBILE) -> accepted.
        Row("US-mobile-national-US-allowed", national("US"), "US", us, e164("US")),
        Row("US-mobile-intl-US-allowed", international("US", us_any), "US", us, e164("US")),
        Row(
            "US-TOLL_FREE-US-allowed",
            national("US", PhoneNumberType.TOLL_FREE),
            "US",
            us,
            NotAMobileNumber,
        ),
        Row("US-mobile-as-US-default", national("US"), "US", None, UnsupportedRegion),
        Row("US-mobile-intl-as-AU-default", international("US"), "AU", None, UnsupportedRegion),
        Row("non-geo-800-as-AU", non_geo_text, "AU", None, UnsupportedRegion),
        # No region chosen, or the form's "Other".
        Row("region-None", national("AU"), None, None, UnsupportedRegion),
        Row("region-Other", international("AU"), "Other", None, UnsupportedRegion),
        Row("region-empty", international("AU"), "", None, UnsupportedRegion),
        Row("region-unknown-ZZ", international("AU"), "ZZ", None, UnsupportedRegion),
        # International format wins over the picked region (see the dedicated test).
        Row("AU-intl-as-NZ-default", international("AU"), "NZ", None, InvalidPhoneNumber),
        Row("AU-intl-as-NZ-only", international("AU"), "NZ", frozenset({"NZ"}), UnsupportedRegion),
        Row("NZ-intl-as-AU-default", international("NZ"), "AU", None, InvalidPhoneNumber),
        Row("AU-national-as-NZ", national("AU"), "NZ", None, InvalidPhoneNumber),
    ]


def _malformed() -> list[Row]:
    au_nat, au_digits = national("AU"), national_digits("AU")
    middle = au_nat.split(" ")[1]
    return [
        # Short numbers parse, then fail validation: InvalidPhoneNumber, not Unparseable.
        Row("short-000-AU-emergency", "000", "AU", None, InvalidPhoneNumber),
        Row("short-112-GB-emergency", "112", "GB", None, InvalidPhoneNumber),
        Row("short-12345-NZ", "12345", "NZ", None, InvalidPhoneNumber),
        Row("short-one-digit", "1", "AU", None, UnparseablePhoneNumber),
        Row("just-a-plus", "+", "AU", None, UnparseablePhoneNumber),
        # Too long: the mobile plus more digits.
        Row("AU-mobile-plus-1-digit", au_nat + "9", "AU", None, InvalidPhoneNumber),
        Row("GB-mobile-plus-1-digit", national("GB") + "0", "GB", None, InvalidPhoneNumber),
        Row("NZ-mobile-plus-2-digits", national("NZ") + "00", "NZ", None, InvalidPhoneNumber),
        Row("AU-e164-plus-1-digit", e164("AU") + "9", "AU", None, InvalidPhoneNumber),
        Row("AU-mobile-plus-10-digits", au_digits + "0" * 10, "AU", None, UnparseablePhoneNumber),
        # Letters.
        Row("letters-call-me", "call me", "AU", None, UnparseablePhoneNumber),
        Row(
            "letters-vanity-middle",
            au_nat.replace(middle, "ABC"),
            "AU",
            None,
            UnparseablePhoneNumber,
        ),
        Row(
            "letters-leading-words",
            "call " + au_nat,
            "AU",
            None,
            UnparseablePhoneNumber,
        ),
        Row("letters-trailing", au_digits + "a", "AU", None, UnparseablePhoneNumber),
        Row("letter-I-for-1", au_digits.replace("1", "I"), "AU", None, UnparseablePhoneNumber),
        # Non-ASCII digits (libphonenumber would fold them).
        Row(
            "arabic-indic-digits",
            shift_digits(au_digits, 0x0660),
            "AU",
            None,
            UnparseablePhoneNumber,
        ),
        Row(
            "full-width-digits", shift_digits(au_digits, 0xFF10), "AU", None, UnparseablePhoneNumber
        ),
        Row("devanagari-digits", shift_digits(au_nat, 0x0966), "AU", None, UnparseablePhoneNumber),
        # Empty and blank.
        Row("empty", "", "AU", None, UnparseablePhoneNumber),
        Row("blank", "   ", "AU", None, UnparseablePhoneNumber),
        # Extensions.
        Row("ext-dot", au_nat + " ext. 12", "AU", None, InvalidPhoneNumber),
        Row("ext-hash", au_digits + "#12", "AU", None, InvalidPhoneNumber),
        Row("ext-x", international("AU") + " x12", "AU", None, InvalidPhoneNumber),
        Row("ext-rfc3966", e164("AU") + ";ext=12", "AU", None, InvalidPhoneNumber),
        # Over MAX_PHONE_INPUT characters.
        Row(
            "over-64-padded", au_nat.ljust(MAX_PHONE_INPUT + 1), "AU", None, UnparseablePhoneNumber
        ),
        Row("over-64-zeros", "0" * (MAX_PHONE_INPUT + 1), "AU", None, UnparseablePhoneNumber),
        # Wrong types (checked before anything else, even before the region).
        Row("raw-None", None, "AU", None, InvalidType),
        Row("raw-int", int(nsn("AU")), "AU", None, InvalidType),
        Row("raw-bytes", au_digits.encode(), "AU", None, InvalidType),
        Row("raw-None-region-Other", None, "Other", None, InvalidType),
        Row("region-int", au_nat, 5, None, InvalidType),
        Row("region-bytes", au_nat, b"AU", None, InvalidType),
    ]


ROWS: list[Row] = _accepted_mobiles() + _not_mobiles() + _other_regions() + _malformed()


def _param(row: Row) -> object:
    return pytest.param(row.raw, row.region, row.allowed, row.expected, id=row.id)


def outcome_of(raw: object, region: object, allowed: Collection[str] | None) -> Outcome:
    """The E.164 result, or the class of the MFAError raised (anything else propagates)."""
    error: MFAError | None = None
    try:
        return call(raw, region, allowed)
    except MFAError as exc:
        error = exc
    assert isinstance(error, (PhoneNumberError, InvalidType)), repr(error)
    return type(error)


@pytest.mark.parametrize(("raw", "region", "allowed", "expected"), [_param(r) for r in ROWS])
def test_phone_table(
    raw: object, region: object, allowed: frozenset[str] | None, expected: Outcome
) -> None:
    assert outcome_of(raw, region, allowed) == expected


def test_table_is_big_enough_and_ids_unique() -> None:
    assert len(ROWS) >= 40
    assert len({row.id for row in ROWS}) == len(ROWS)
    # every region's non-mobile examples made it into the table
    for region in ("AU", "NZ", "GB"):
        assert (
            sum(r.id.startswith(f"{region}-") and r.expected is NotAMobileNumber for r in ROWS) >= 4
        )


def test_the_examples_are_of_the_expected_types() -> None:
    """Guards the table against metadata updates that would change what it tests."""
    for region in ("AU", "NZ", "GB", "JE", "GG", "IM"):
        assert phonenumbers.number_type(example(region, MOBILE)) == MOBILE
    for region in ("AU", "NZ", "GB"):
        for name, kind in NON_MOBILE_TYPES.items():
            if has_example(region, kind):
                assert phonenumbers.number_type(example(region, kind)) == kind, (region, name)
    # The US cannot tell mobiles from landlines: the mobile example is FIXED_LINE_OR_MOBILE.
    us_mobile = example("US", MOBILE)
    assert phonenumbers.number_type(us_mobile) == PhoneNumberType.FIXED_LINE_OR_MOBILE
    assert parse_mobile(national("US"), "US", allowed_regions={"US"}) == e164("US")
    # "000" and "112" are real short (emergency) numbers, refused as phone numbers.
    assert phonenumbers.is_emergency_number("000", "AU")
    assert phonenumbers.is_emergency_number("112", "GB")
    # JE/GG mobile examples are valid only for their own region; the IM one is not.
    for region in ("JE", "GG"):
        assert not phonenumbers.is_valid_number_for_region(example(region, MOBILE), "GB")
    assert not phonenumbers.is_valid_number_for_region(example("IM", FIXED_LINE), "GB")


def test_international_format_overrides_the_picked_region() -> None:
    """A number typed with ``+CC`` is parsed for that country, whatever region was picked.

    ``+61 412 345 678`` with NZ picked parses as an AU number. AU is allowed by default, but
    it is not the picked region, so it is refused with :class:`InvalidPhoneNumber` ("not a
    valid number for the country chosen"); when only NZ is allowed the number's own region
    is checked first and the answer is :class:`UnsupportedRegion`. The person must pick the
    country of the number; the number is never silently re-homed.
    """
    with pytest.raises(InvalidPhoneNumber):
        parse_mobile(international("AU"), "NZ")
    with pytest.raises(UnsupportedRegion):
        parse_mobile(international("AU"), "NZ", allowed_regions={"NZ"})
    assert parse_mobile(international("AU"), "AU") == e164("AU")


def test_isle_of_man_mobile_example_is_valid_for_gb_in_libphonenumber() -> None:
    """Why parse_mobile checks the Crown dependencies explicitly.

    libphonenumber's IM mobile example (+44 7924 123456) is valid for *both* GB and IM, and
    ``region_code_for_number`` answers GB for it (GB is the main country of +44 and is
    tried first). Relying on that answer would accept the number as GB and refuse it as IM:
    the opposite of the requirement ("an Isle of Man mobile entered as GB refused").
    """
    im = example("IM", MOBILE)
    assert phonenumbers.is_valid_number_for_region(im, "IM")
    assert phonenumbers.is_valid_number_for_region(im, "GB")
    assert phonenumbers.region_code_for_number(im) == "GB"


# --- errors: classes, messages, privacy ------------------------------------------------------

PHONE_ERRORS: tuple[type[PhoneNumberError], ...] = (
    PhoneNumberError,
    UnparseablePhoneNumber,
    InvalidPhoneNumber,
    NotAMobileNumber,
    UnsupportedRegion,
)


def test_error_hierarchy() -> None:
    for cls in PHONE_ERRORS:
        assert issubclass(cls, PhoneNumberError)
        assert issubclass(cls, InvalidInput)
        assert issubclass(cls, MFAError)
        assert issubclass(cls, ValueError)
    assert issubclass(InvalidType, MFAError)
    assert issubclass(InvalidType, TypeError)
    assert not issubclass(InvalidType, PhoneNumberError)


def test_each_phone_error_has_its_own_public_message() -> None:
    messages = [cls.public_message for cls in PHONE_ERRORS]
    assert len(set(messages)) == len(messages)
    assert all(m and m.endswith(".") for m in messages)
    assert "authenticator app" in UnsupportedRegion.public_message
    for cls in PHONE_ERRORS:
        if cls is not UnsupportedRegion:
            assert "authenticator app" not in cls.public_message


@pytest.mark.parametrize("region", [None, "Other", "", "US"])
def test_unsupported_region_suggests_an_authenticator_app(region: str | None) -> None:
    with pytest.raises(UnsupportedRegion) as info:
        parse_mobile(national("AU"), region)
    assert "authenticator app" in info.value.public_message


def _private_rows() -> list[Row]:
    return [
        r
        for r in ROWS
        if not isinstance(r.expected, str) and isinstance(r.raw, str) and len(digits(r.raw)) >= 8
    ]


def assert_number_not_in(message: str, raw: str) -> None:
    """Neither the digit string of ``raw`` nor its last 8 digits appear in ``message``."""
    raw_digits = digits(raw)
    assert raw_digits not in message
    assert raw_digits not in digits(message)
    assert raw_digits[-8:] not in digits(message)


@pytest.mark.parametrize("row", _private_rows(), ids=lambda r: r.id)
def test_refusals_do_not_leak_the_number(row: Row) -> None:
    assert isinstance(row.raw, str)
    with pytest.raises(MFAError) as info:
        call(row.raw, row.region, row.allowed)
    assert isinstance(info.value, (PhoneNumberError, InvalidType))
    assert_number_not_in(str(info.value), row.raw)
    assert_number_not_in(repr(info.value), row.raw)
    assert_number_not_in(info.value.public_message, row.raw)
    # nothing chained that a traceback logger would print either
    assert info.value.__cause__ is None


def test_privacy_rows_cover_every_refusal_class() -> None:
    classes = {r.expected for r in _private_rows()}
    assert classes >= {
        UnparseablePhoneNumber,
        InvalidPhoneNumber,
        NotAMobileNumber,
        UnsupportedRegion,
    }


# --- properties ------------------------------------------------------------------------------

#: (region picked, allowed regions) for every region whose mobile example must be accepted.
MOBILE_CASES: list[tuple[str, frozenset[str]]] = [
    *((region, DEFAULT_REGIONS) for region in sorted(DEFAULT_REGIONS)),
    ("JE", frozenset({"GB", "JE", "GG"})),
    ("GG", frozenset({"GB", "JE", "GG"})),
    ("US", frozenset({"US"})),
]

SEPARATORS = st.sampled_from(["", "", "", " ", "  ", "-", " - ", ".", "/"])


def tokens_of(region: str, style: str) -> list[str]:
    """The pieces a person could type the mobile example as, separators to be inserted."""
    number = example(region, MOBILE)
    cc = str(number.country_code)
    if style == "national":
        return list(national_digits(region))
    if style == "nsn":
        return list(nsn(region))
    if style == "international":
        return ["+", *cc, *nsn(region)]
    if style == "international-idd":
        # dialled with the region's own international prefix: "0011 61 412 345 678"
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        assert metadata is not None
        idd = metadata.preferred_international_prefix or metadata.international_prefix
        assert idd is not None
        assert idd.isdigit(), idd
        return [idd, *cc, *nsn(region)]
    if style == "bracketed-area":
        head, tail = national_digits(region)[:4], national_digits(region)[4:]
        return [f"({head})", *tail]
    raise AssertionError(style)


STYLES = ["national", "nsn", "international", "international-idd", "bracketed-area"]


@settings(max_examples=300, deadline=None)
@given(
    case=st.sampled_from(MOBILE_CASES),
    style=st.sampled_from(STYLES),
    seps=st.lists(SEPARATORS, min_size=20, max_size=20),
    lead=st.sampled_from(["", " ", "  "]),
    trail=st.sampled_from(["", " ", "  "]),
)
def test_every_formatting_of_a_mobile_normalises_to_the_same_e164(
    case: tuple[str, frozenset[str]], style: str, seps: list[str], lead: str, trail: str
) -> None:
    """Reformatting can never produce a different key (the SMS quota key is the E.164)."""
    region, allowed = case
    pieces = tokens_of(region, style)
    used = [*seps[: len(pieces) - 1], ""]
    raw = lead + "".join(p + sep for p, sep in zip(pieces, used, strict=True)) + trail
    assert len(raw) <= MAX_PHONE_INPUT
    assert parse_mobile(raw, region, allowed_regions=allowed) == e164(region)
    assert parse_mobile(raw, region.lower(), allowed_regions=allowed) == e164(region)


@pytest.mark.parametrize(("region", "allowed"), MOBILE_CASES, ids=[c[0] for c in MOBILE_CASES])
def test_the_canonical_forms_agree(region: str, allowed: frozenset[str]) -> None:
    want = e164(region)
    forms = {national(region), international(region), want, nsn(region)}
    assert {parse_mobile(f, region, allowed_regions=allowed) for f in forms} == {want}
    # E.164 output is a fixed point
    assert parse_mobile(want, region, allowed_regions=allowed) == want


E164_RE = re.compile(r"\+[1-9][0-9]{6,14}")
PHONEISH = st.text(alphabet="0123456789 +-.()#x/ext;=aA\u0660\uff10\u00a0", max_size=70)


@settings(max_examples=300, deadline=None)
@given(
    raw=st.one_of(PHONEISH, st.text(max_size=80)),
    region=st.sampled_from(["AU", "NZ", "GB", "au", None, "Other"]),
)
def test_any_text_gets_e164_or_a_typed_refusal(raw: str, region: str | None) -> None:
    try:
        result = parse_mobile(raw, region)
    except PhoneNumberError as exc:
        if len(digits(raw)) >= 8:
            assert_number_not_in(str(exc), raw)
        return
    assert E164_RE.fullmatch(result), result
    assert region is not None
    assert parse_mobile(result, region) == result


# --- mask_e164 -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        ("AU", "+61 4•• ••• 678"),
        ("NZ", "+64 2• ••• •567"),
        ("GB", "+44 7••• •••456"),
    ],
)
def test_mask_e164_examples(region: str, expected: str) -> None:
    number = e164(region)
    hint = mask_e164(number)
    assert hint == expected
    prefix = {"AU": "+61 4", "NZ": "+64 2", "GB": "+44 7"}[region]
    assert hint.startswith(prefix)
    assert hint.endswith(number[-3:])
    assert "•" in hint
    national_part = hint.split(" ", 1)[1]
    assert len(digits(national_part)) <= 4
    assert not re.search(r"[0-9]{4}", national_part)


def _mobile_examples(*, leading_zero: bool) -> list[tuple[str, PhoneNumber]]:
    """Every region's mobile example, split on libphonenumber's ``italian_leading_zero``
    (the national significant number starts with a 0 that ``national_number`` drops)."""
    found = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        number = phonenumbers.example_number_for_type(region, MOBILE)
        if number is not None and bool(number.italian_leading_zero) == leading_zero:
            found.append((region, number))
    return found


def assert_mask_hides(region: str, number: PhoneNumber) -> None:
    """The hint shows the country code and at most 4 national digits, and keeps the length."""
    hint = mask_e164(phonenumbers.format_number(number, PhoneNumberFormat.E164))
    country, _, masked = hint.partition(" ")
    national_number = phonenumbers.national_significant_number(number)
    assert country == f"+{number.country_code}", (region, hint)
    assert len(digits(masked)) <= 4, (region, hint)
    assert len(digits(masked)) + masked.count("•") == len(national_number), (region, hint)
    if len(national_number) >= 5:
        # The number keeps its national grouping, so compare the digits and the bullets in
        # order: the first digit and the last three are shown, everything between masked.
        shape = "".join(c for c in masked if c.isdigit() or c == "•")
        expected = national_number[0] + "•" * (len(national_number) - 4) + national_number[-3:]
        assert shape == expected, (region, hint)


def test_mask_e164_reveals_at_most_four_national_digits_in_any_region() -> None:
    """For every region's mobile example: the country code, <= 4 digits, same length."""
    examples = _mobile_examples(leading_zero=False)
    assert len(examples) > 200
    for region, number in examples:
        assert_mask_hides(region, number)


@pytest.mark.parametrize(
    ("region", "number"),
    _mobile_examples(leading_zero=True),
    ids=[r for r, _ in _mobile_examples(leading_zero=True)],
)
def test_mask_e164_keeps_a_leading_zero(region: str, number: PhoneNumber) -> None:
    assert_mask_hides(region, number)


def test_mask_e164_of_a_parsed_number() -> None:
    for region in ("AU", "NZ", "GB"):
        assert mask_e164(parse_mobile(national(region), region)) == mask_e164(e164(region))
