"""Property-based tests for :mod:`mfakit.hazmat.otp` and :mod:`mfakit.hazmat.compare`.

Hypothesis runs without an example database (``database=None``) so the tests leave no
``.hypothesis/`` directory behind; a failure prints its falsifying example and the explicit
``@example`` cases pin the ones found so far.
"""

from __future__ import annotations

import base64
import string
import sys
import types
import unicodedata
from typing import Final, Literal

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mfakit.exceptions import InvalidInput, InvalidSecret, InvalidType, MalformedCode
from mfakit.hazmat import compare
from mfakit.hazmat.compare import MAX_CODE_INPUT, constant_time_equal, normalize_code
from mfakit.hazmat.otp import (
    MAX_SECRET_TEXT,
    Algorithm,
    decode_secret,
    encode_secret,
    hotp,
    hotp_window,
    time_step,
    totp,
)

PROPERTY: Final = settings(
    database=None, deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow]
)

ASCII_DIGITS: Final = frozenset(string.digits)
B32_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
#: Everything decode_secret may see in valid input: the alphabet in either case, space, '='.
B32_ALLOWED: Final = frozenset(B32_ALPHABET + B32_ALPHABET.lower() + " =")

ALGORITHMS: Final[tuple[Algorithm, ...]] = ("SHA1", "SHA256", "SHA512")
MAX_TIME: Final = 2**40

algorithms = st.sampled_from(ALGORITHMS)
code_lengths = st.integers(min_value=6, max_value=10)
periods = st.integers(min_value=1, max_value=3600)
keys = st.binary(min_size=1, max_size=128)


def _is_ascii_alnum(text: str) -> bool:
    return text.isascii() and text.isalnum()


def _look_like_ascii(char: str) -> bool:
    """True for a non-ASCII char that case mapping or NFKC turns into ASCII letters/digits."""
    forms = (char.upper(), char.lower(), char.casefold(), unicodedata.normalize("NFKC", char))
    return any(_is_ascii_alnum(form) for form in forms)


def _code_points(*ranges: range) -> list[str]:
    return [chr(cp) for r in ranges for cp in r if not 0xD800 <= cp <= 0xDFFF]


# Adversarial characters for decode_secret: non-ASCII look-alikes of base32 text (dotless i,
# long s, sharp s, ligatures, full-width and mathematical letters, Kelvin sign, ...).
# The BMP plus the Mathematical Alphanumeric Symbols block cover them all.
B32_LOOKALIKES: Final = [
    c for c in _code_points(range(0x80, 0x10000), range(0x1D400, 0x1D800)) if _look_like_ascii(c)
]

# The subset that plain case mapping (upper/lower/casefold) alone turns into ASCII letters:
# dotless i, long s, sharp s, Latin ligatures, Kelvin sign, Angstrom sign... decode_secret
# accepts either case, so this is where a case-insensitive comparison goes wrong.
B32_CASE_LOOKALIKES: Final = [
    c
    for c in B32_LOOKALIKES
    if any(_is_ascii_alnum(form) for form in (c.upper(), c.lower(), c.casefold()))
]

# Decimal digits (category Nd) that NFKC does not fold to ASCII: Arabic-Indic, Devanagari,
# Bengali, Thai, ... ``int()`` and ``str.isdigit()`` accept all of them.
NON_FOLDING_DIGITS: Final = [
    c
    for c in _code_points(range(0x80, 0x20000))
    if unicodedata.category(c) == "Nd" and not set(unicodedata.normalize("NFKC", c)) <= ASCII_DIGITS
]

FULLWIDTH_DIGITS: Final = {d: chr(0xFF10 + int(d)) for d in string.digits}
#: Separators a person may type or paste; each is removed (possibly after NFKC).
SEPARATORS: Final = (
    " ",
    "-",
    "\t",
    "\u00a0",  # no-break space -> " "
    "\u2009",  # thin space -> " "
    "\u202f",  # narrow no-break space -> " "
    "\u3000",  # ideographic space -> " "
    "\uff0d",  # full-width hyphen-minus -> "-"
    "\u2010",  # hyphen
    "\u2011",  # non-breaking hyphen -> U+2010
    "\u2012",  # figure dash
    "\u2013",  # en dash
    "\u2212",  # minus sign
)


def test_character_tables() -> None:
    assert len(B32_LOOKALIKES) > 500
    for char in ("\u0131", "\u017f", "\u00df", "\ufb00", "\u212a", "\uff21", "\U0001d400"):
        assert char in B32_LOOKALIKES
    assert {"\u0131", "\u017f", "\u00df", "\ufb00", "\u212a"} <= set(B32_CASE_LOOKALIKES)
    assert len(NON_FOLDING_DIGITS) > 400
    for char in ("\u0660", "\u0669", "\u06f5", "\u0966", "\u096f", "\u09e6", "\u0e51"):
        assert char in NON_FOLDING_DIGITS
    assert "\uff11" not in NON_FOLDING_DIGITS  # full-width digits fold to ASCII
    assert "\U0001d7ce" not in NON_FOLDING_DIGITS  # so do mathematical digits
    assert all(int(c) in range(10) for c in NON_FOLDING_DIGITS)  # why int() is unsafe


# --------------------------------------------------------------------------- hotp / totp


@PROPERTY
@given(
    key=st.binary(max_size=200),
    counter=st.integers(min_value=0, max_value=2**64 - 1),
    digits=code_lengths,
    algorithm=algorithms,
)
def test_hotp_is_exactly_digits_ascii_digits(
    key: bytes, counter: int, digits: int, algorithm: Algorithm
) -> None:
    code = hotp(key, counter, digits=digits, algorithm=algorithm)
    assert isinstance(code, str)
    assert len(code) == digits
    assert set(code) <= ASCII_DIGITS


@PROPERTY
@given(
    key=keys,
    counter=st.integers(min_value=0, max_value=2**64 - 1),
    algorithm=algorithms,
)
def test_hotp_shorter_code_is_suffix_of_longer(
    key: bytes, counter: int, algorithm: Algorithm
) -> None:
    ten = hotp(key, counter, digits=10, algorithm=algorithm)
    assert int(ten) < 2**31
    for digits in range(6, 10):
        assert hotp(key, counter, digits=digits, algorithm=algorithm) == ten[-digits:]


@PROPERTY
@given(
    key=keys,
    unix_time=st.one_of(
        st.integers(min_value=0, max_value=MAX_TIME),
        st.floats(min_value=0, max_value=MAX_TIME, allow_nan=False, allow_infinity=False),
    ),
    period=periods,
    digits=code_lengths,
    algorithm=algorithms,
    data=st.data(),
)
def test_totp_is_hotp_of_time_step(
    key: bytes,
    unix_time: float,
    period: int,
    digits: int,
    algorithm: Algorithm,
    data: st.DataObject,
) -> None:
    t0 = data.draw(st.integers(min_value=0, max_value=int(unix_time)), label="t0")
    step = time_step(unix_time, period=period, t0=t0)
    assert step == (int(unix_time) - t0) // period
    assert totp(key, unix_time, period=period, t0=t0, digits=digits, algorithm=algorithm) == hotp(
        key, step, digits=digits, algorithm=algorithm
    )


@PROPERTY
@given(
    key=keys,
    period=periods,
    data=st.data(),
    algorithm=algorithms,
)
def test_totp_constant_within_a_period(
    key: bytes, period: int, data: st.DataObject, algorithm: Algorithm
) -> None:
    step = data.draw(st.integers(min_value=0, max_value=MAX_TIME // period), label="step")
    start = step * period
    a = data.draw(st.integers(min_value=0, max_value=period - 1), label="a")
    b = data.draw(
        st.floats(min_value=0, max_value=period, exclude_max=True, allow_nan=False), label="b"
    )
    codes = {
        totp(key, start, period=period, algorithm=algorithm),
        totp(key, start + a, period=period, algorithm=algorithm),
        totp(key, start + period - 1, period=period, algorithm=algorithm),
    }
    if start + b < start + period:  # float rounding can carry a huge start over the edge
        codes.add(totp(key, start + b, period=period, algorithm=algorithm))
    assert codes == {hotp(key, step, algorithm=algorithm)}
    assert time_step(start, period=period) == step
    assert time_step(start + period - 1, period=period) == step
    assert time_step(start + period, period=period) == step + 1


@PROPERTY
@given(
    t1=st.floats(min_value=0, max_value=MAX_TIME, allow_nan=False),
    t2=st.floats(min_value=0, max_value=MAX_TIME, allow_nan=False),
    period=periods,
)
@example(t1=29.999999, t2=30.0, period=30)
@example(t1=2.0**32 - 1, t2=2.0**32, period=1)
def test_time_step_is_monotone(t1: float, t2: float, period: int) -> None:
    low, high = sorted((t1, t2))
    assert time_step(low, period=period) <= time_step(high, period=period)
    assert time_step(low, period=period) >= 0


@PROPERTY
@given(
    t1=st.integers(min_value=0, max_value=MAX_TIME),
    t2=st.integers(min_value=0, max_value=MAX_TIME),
    period=periods,
)
def test_time_step_is_monotone_integers(t1: int, t2: int, period: int) -> None:
    low, high = sorted((t1, t2))
    assert time_step(low, period=period) <= time_step(high, period=period)
    assert time_step(high, period=period) - time_step(low, period=period) <= (
        (high - low) // period + 1
    )


# --------------------------------------------------------------------------- base32 secrets


def _group(text: str, sizes: list[int]) -> str:
    """Insert single spaces into ``text`` after chunks of the given sizes."""
    parts: list[str] = []
    rest = text
    for size in sizes:
        if not rest:
            break
        parts.append(rest[:size])
        rest = rest[size:]
    if rest:
        parts.append(rest)
    return " ".join(parts)


@PROPERTY
@given(key=st.binary(min_size=1, max_size=64))
def test_encode_decode_round_trip(key: bytes) -> None:
    text = encode_secret(key)
    assert set(text) <= set(B32_ALPHABET)
    assert "=" not in text
    assert text == base64.b32encode(key).decode("ascii").rstrip("=")
    assert decode_secret(text) == key


@PROPERTY
@given(
    key=st.binary(min_size=1, max_size=64),
    case=st.sampled_from(["upper", "lower", "mixed"]),
    padded=st.booleans(),
    sizes=st.lists(st.integers(min_value=1, max_value=8), max_size=30),
    outer_spaces=st.tuples(st.integers(0, 3), st.integers(0, 3)),
    data=st.data(),
)
def test_decode_accepts_human_forms(
    key: bytes,
    case: str,
    padded: bool,
    sizes: list[int],
    outer_spaces: tuple[int, int],
    data: st.DataObject,
) -> None:
    text = base64.b32encode(key).decode("ascii") if padded else encode_secret(key)
    if case == "lower":
        text = text.lower()
    elif case == "mixed":
        flips = data.draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
        text = "".join(c.lower() if flip else c for c, flip in zip(text, flips, strict=True))
    text = " " * outer_spaces[0] + _group(text, sizes) + " " * outer_spaces[1]
    assert len(text) <= MAX_SECRET_TEXT
    assert decode_secret(text) == key


def test_decode_accepts_app_style_groups() -> None:
    assert decode_secret("JBSW Y3DP EHPK 3PXP") == b"Hello!\xde\xad\xbe\xef"
    assert decode_secret("jbsw y3dp ehpk 3pxp") == b"Hello!\xde\xad\xbe\xef"
    assert decode_secret("GEZDGNBVGY3TQOJQ") == b"1234567890"
    assert decode_secret("MZXW6===") == b"foo"


def _bad_chars() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(B32_CASE_LOOKALIKES),
        st.sampled_from(B32_LOOKALIKES),
        st.characters(exclude_characters="".join(sorted(B32_ALLOWED))),
        st.sampled_from(list("0189\t\n\r-_+/.,:")),
    )


@PROPERTY
@given(
    key=st.binary(min_size=1, max_size=40),
    lower=st.booleans(),
    bad=st.lists(_bad_chars(), min_size=1, max_size=3),
    data=st.data(),
)
@example(key=b"\x00" * 5, lower=False, bad=["\u0131"], data=None)  # dotless i -> "I"
@example(key=b"\x00" * 5, lower=False, bad=["\u017f"], data=None)  # long s -> "S"
def test_decode_refuses_any_char_outside_alphabet(
    key: bytes, lower: bool, bad: list[str], data: st.DataObject | None
) -> None:
    """Any character other than A-Z, a-z, 2-7, space and '=' makes the secret invalid.

    In particular no case mapping may turn a non-ASCII look-alike into a base32 letter.
    """
    text = encode_secret(key)
    if lower:
        text = text.lower()
    for char in bad:
        if data is None:  # explicit examples: replace the first character
            text = char + text[1:]
        else:
            at = data.draw(st.integers(min_value=0, max_value=len(text)), label="position")
            replace = data.draw(st.booleans(), label="replace")
            text = text[:at] + char + text[at + replace :]
    assert not set(text) <= B32_ALLOWED
    with pytest.raises(InvalidSecret):
        decode_secret(text)


@pytest.mark.parametrize(
    "text",
    [
        "\u0131AAAAAAA",  # LATIN SMALL LETTER DOTLESS I, upper() -> "I"
        "\u017fAAAAAAA",  # LATIN SMALL LETTER LONG S, upper() -> "S"
        "\u00dfAAAAAA",  # LATIN SMALL LETTER SHARP S, upper() -> "SS"
        "\ufb00AAAAAA",  # LATIN SMALL LIGATURE FF, upper() -> "FF"
        "\ufb05AAAAAA",  # LATIN SMALL LIGATURE LONG S T, upper() -> "ST"
        "JBSW Y3DP EHPK 3PXP".replace("P", "p").replace("S", "\u017f"),
    ],
    ids=["dotless-i", "long-s", "sharp-s", "ligature-ff", "ligature-st", "jbsw-long-s"],
)
def test_decode_refuses_case_mapped_lookalikes(text: str) -> None:
    """Regression: str.upper() maps these non-ASCII letters onto the base32 alphabet."""
    assert not text.isascii()
    with pytest.raises(InvalidSecret):
        decode_secret(text)


@PROPERTY
@given(
    value=st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.binary(),
        st.builds(bytearray, st.binary()),
        st.lists(st.text(max_size=3), max_size=3),
    )
)
def test_decode_refuses_non_str(value: object) -> None:
    with pytest.raises(InvalidType):
        decode_secret(value)


@pytest.mark.parametrize(
    "text",
    ["", " ", "====", "  ==", "A", "AAA", "AAAAAA", "A" * 9, "AB=CD", "A" * (MAX_SECRET_TEXT + 1)],
    ids=["empty", "space", "padding", "space-padding", "len1", "len3", "len6", "len9",
         "inner-padding", "too-long"],
)  # fmt: skip
def test_decode_refuses_malformed(text: str) -> None:
    with pytest.raises(InvalidSecret):
        decode_secret(text)


# --------------------------------------------------------------------------- normalize_code


@st.composite
def typed_codes(draw: st.DrawFn) -> tuple[str, str, int]:
    """(canonical code, the way a person typed it, digits)."""
    digits = draw(code_lengths)
    code = draw(st.text(alphabet=string.digits, min_size=digits, max_size=digits))
    pieces: list[str] = [draw(st.sampled_from(["", " ", "  ", "\u3000", "\t"]))]
    for position, char in enumerate(code):
        if position:
            pieces.append("".join(draw(st.lists(st.sampled_from(SEPARATORS), max_size=2))))
        pieces.append(FULLWIDTH_DIGITS[char] if draw(st.booleans()) else char)
    pieces.append(draw(st.sampled_from(["", " ", "\u00a0", "\n"])))
    typed = "".join(pieces)
    assert len(typed) <= MAX_CODE_INPUT
    return code, typed, digits


@PROPERTY
@given(typed_codes())
@example(("123456", "123 456", 6))
@example(("123456", "123-456", 6))
@example(("123456", "\uff11\uff12\uff13\uff14\uff15\uff16", 6))
@example(("012345", " \uff10\uff11\uff12\u3000\uff13\uff14\uff15 ", 6))
@example(("12345678", "1234\u20135678", 8))
def test_normalize_code_folds_typed_variants(case: tuple[str, str, int]) -> None:
    code, typed, digits = case
    assert normalize_code(typed, digits=digits) == code
    assert normalize_code(code, digits=digits) == code


@PROPERTY
@given(
    code=st.text(alphabet=string.digits, min_size=6, max_size=6),
    digits=st.sampled_from(NON_FOLDING_DIGITS),
    positions=st.sets(st.integers(min_value=0, max_value=5), min_size=1),
    extra=st.booleans(),
)
@example(code="123456", digits="\u0661", positions={0}, extra=False)  # Arabic-Indic one
@example(code="123456", digits="\u0966", positions={5}, extra=False)  # Devanagari zero
@example(code="123456", digits="\u09e7", positions={2}, extra=True)  # Bengali one
def test_normalize_code_refuses_non_ascii_digits(
    code: str, digits: str, positions: set[int], extra: bool
) -> None:
    """Any non-ASCII decimal digit that NFKC keeps non-ASCII is refused, replacing or added."""
    chars = list(code)
    for position in positions:
        chars[position] = digits
    typed = "".join(chars) + (digits if extra else "")
    assert typed.isdigit()  # what a naive validator would accept
    for length in (6, 7):
        with pytest.raises(MalformedCode):
            normalize_code(typed, digits=length)


@pytest.mark.parametrize(
    "typed",
    [
        "\u0661\u0662\u0663\u0664\u0665\u0666",  # Arabic-Indic 123456
        "\u06f1\u06f2\u06f3\u06f4\u06f5\u06f6",  # Extended Arabic-Indic (Persian)
        "\u0967\u0968\u0969\u096a\u096b\u096c",  # Devanagari
        "\u09e7\u09e8\u09e9\u09ea\u09eb\u09ec",  # Bengali
        "12345\u0e56",  # Thai six at the end
    ],
    ids=["arabic-indic", "persian", "devanagari", "bengali", "thai-suffix"],
)
def test_normalize_code_refuses_script_digits(typed: str) -> None:
    assert int(typed) > 0  # int() would have accepted it
    with pytest.raises(MalformedCode):
        normalize_code(typed, digits=6)


@PROPERTY
@given(
    value=st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.binary(),
        st.builds(bytearray, st.binary()),
        st.lists(st.integers(), max_size=6),
    ),
    digits=code_lengths,
)
@example(value=123456, digits=6)
@example(value=b"123456", digits=6)
def test_normalize_code_refuses_non_str(value: object, digits: int) -> None:
    with pytest.raises(InvalidType):
        normalize_code(value, digits=digits)


@PROPERTY
@given(
    text=st.text(min_size=MAX_CODE_INPUT + 1, max_size=3 * MAX_CODE_INPUT),
    digits=code_lengths,
)
@example(text="123456" + " " * (MAX_CODE_INPUT - 5), digits=6)
@example(text="1" * (MAX_CODE_INPUT + 1), digits=MAX_CODE_INPUT + 1)
def test_normalize_code_refuses_long_input(text: str, digits: int) -> None:
    with pytest.raises(MalformedCode):
        normalize_code(text, digits=digits)


def test_normalize_code_accepts_input_at_the_cap() -> None:
    padded = "123456".center(MAX_CODE_INPUT)
    assert len(padded) == MAX_CODE_INPUT
    assert normalize_code(padded, digits=6) == "123456"


@pytest.mark.parametrize(
    "length",
    [MAX_CODE_INPUT + 1, 10_000, 10_000_000],
    ids=["cap+1", "10k", "10M"],
)
def test_normalize_code_caps_length_before_nfkc(
    length: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Oversized input is refused before NFKC runs (NFKC on huge input is a DoS)."""
    calls: list[int] = []

    def spy(form: Literal["NFC", "NFD", "NFKC", "NFKD"], text: str) -> str:
        calls.append(len(text))
        return unicodedata.normalize(form, text)

    monkeypatch.setattr(compare, "unicodedata", types.SimpleNamespace(normalize=spy))
    with pytest.raises(MalformedCode):
        normalize_code("1" * length, digits=6)
    with pytest.raises(MalformedCode):
        normalize_code("\ufdfa" * length, digits=6)  # NFKC expands this one 18-fold
    assert calls == []
    # The spy does see normal-sized input, so the check above is meaningful. (Input that
    # is already six ASCII digits takes a fast path that needs no NFKC.)
    assert normalize_code("123 456", digits=6) == "123456"
    assert calls == [7]


# --------------------------------------------------------------------------- comparison


@PROPERTY
@given(a=st.text(), b=st.text())
@example(a="123456", b="123456")
@example(a="123456", b="123457")
@example(a="\u00e9", b="e\u0301")  # canonically equivalent but different code points
def test_constant_time_equal_agrees_with_eq_text(a: str, b: str) -> None:
    assert constant_time_equal(a, b) is (a == b)
    assert constant_time_equal(a, a) is True
    assert constant_time_equal(b, "".join(list(b))) is True


@PROPERTY
@given(a=st.binary(), b=st.binary())
def test_constant_time_equal_agrees_with_eq_bytes(a: bytes, b: bytes) -> None:
    assert constant_time_equal(a, b) is (a == b)
    assert constant_time_equal(a, bytes(a)) is True


@PROPERTY
@given(code=st.text(alphabet=string.digits, min_size=6, max_size=10), data=st.data())
def test_constant_time_equal_on_codes(code: str, data: st.DataObject) -> None:
    other = data.draw(
        st.one_of(
            st.just(code),
            st.text(alphabet=string.digits, min_size=len(code), max_size=len(code)),
        )
    )
    assert constant_time_equal(code, other) is (code == other)


def test_input_invalid_hierarchy() -> None:
    """The errors these properties expect are all InvalidInput, hence ValueError."""
    for error in (InvalidSecret, InvalidType, MalformedCode):
        assert issubclass(error, InvalidInput)
        assert issubclass(error, ValueError)
    assert sys.maxunicode == 0x10FFFF


@PROPERTY
@given(
    key=st.binary(min_size=1, max_size=64),
    steps=st.lists(st.integers(min_value=0, max_value=2**64 - 1), min_size=0, max_size=5),
    digits=st.sampled_from([6, 7, 8, 9, 10]),
    algorithm=st.sampled_from(["SHA1", "SHA256", "SHA512"]),
)
def test_hotp_window_equals_independent_hotp_calls(
    key: bytes, steps: list[int], digits: int, algorithm: Algorithm
) -> None:
    """The batched window computation used by TOTP verification is plain HOTP per step."""
    assert hotp_window(key, steps, digits=digits, algorithm=algorithm) == [
        hotp(key, step, digits=digits, algorithm=algorithm) for step in steps
    ]
