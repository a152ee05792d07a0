"""Tests for mfakit.qr: Key URIs (Google Authenticator Key URI format) and QR rendering."""

from __future__ import annotations

import base64
import dataclasses
import io
import os
import random
import subprocess
import sys
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pyotp
import pytest
import zxingcpp
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from mfakit.exceptions import (
    InvalidInput,
    InvalidSecret,
    InvalidType,
    MFAError,
    UnsupportedParameterWarning,
)
from mfakit.hazmat.otp import encode_secret
from mfakit.qr import (
    MAX_URI_LENGTH,
    OtpauthURI,
    build_uri,
    parse_uri,
    qr_data_uri,
    qr_png,
    qr_svg,
    qr_terminal,
)

pytestmark = pytest.mark.filterwarnings("error::mfakit.exceptions.MFAWarning")

REPO = Path(__file__).resolve().parent.parent
#: RFC 6238 appendix B SHA1 seed: 20 bytes.
SEED = b"12345678901234567890"
SEED_B32 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
#: A valid 20-byte secret for the malformed-URI table.
S = SEED_B32


def _is_default(kwargs: dict[str, Any]) -> bool:
    return (
        kwargs.get("algorithm", "SHA1"),
        kwargs.get("digits", 6),
        kwargs.get("period", 30),
    ) == ("SHA1", 6, 30)


def build(**kwargs: Any) -> str:
    """build_uri, asserting that it warns exactly when the parameters are not the defaults."""
    if _is_default(kwargs):
        return build_uri(**kwargs)  # the module's filterwarnings turns a warning into an error
    with pytest.warns(UnsupportedParameterWarning):
        return build_uri(**kwargs)


def decode_png(png: bytes) -> list[str]:
    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert all(r.format == zxingcpp.BarcodeFormat.QRCode for r in results)
    return [r.text for r in results]


# --------------------------------------------------------------------------------------
# build_uri
# --------------------------------------------------------------------------------------


def test_build_uri_known_value() -> None:
    uri = build_uri(secret=SEED, account="alice@example.com", issuer="Example Co")
    assert uri == (
        "otpauth://totp/Example%20Co:alice%40example.com"
        "?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Example%20Co"
    )


def test_build_uri_without_issuer() -> None:
    uri = build_uri(secret=SEED, account="alice", issuer=None)
    assert uri == "otpauth://totp/alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"


def test_build_uri_non_default_parameters_are_explicit_and_warn() -> None:
    with pytest.warns(UnsupportedParameterWarning, match="SHA512") as record:
        uri = build_uri(
            secret=SEED * 3,
            account="bob",
            issuer="ACME",
            algorithm="SHA512",
            digits=8,
            period=60,
        )
    assert uri == (
        f"otpauth://totp/ACME:bob?secret={encode_secret(SEED * 3)}&issuer=ACME"
        "&algorithm=SHA512&digits=8&period=60"
    )
    # stacklevel=2: the warning points at the caller, not at mfakit.
    assert record[0].filename == __file__


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"algorithm": "SHA256"}, "&algorithm=SHA256"),
        ({"digits": 7}, "&digits=7"),
        ({"period": 15}, "&period=15"),
    ],
)
def test_each_non_default_parameter_warns(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.warns(UnsupportedParameterWarning):
        uri = build_uri(secret=SEED, account="a", issuer="I", **kwargs)
    assert uri.endswith(fragment)
    assert uri.count("&") == 2


def test_default_parameters_do_not_warn_and_are_omitted() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        uri = build_uri(secret=SEED, account="a", issuer="I", algorithm="SHA1", digits=6, period=30)
    assert "algorithm" not in uri
    assert "digits" not in uri
    assert "period" not in uri


@pytest.mark.parametrize(
    ("issuer", "account", "label", "issuer_param"),
    [
        ("My Bank", "john doe", "My%20Bank:john%20doe", "My%20Bank"),
        ("A&B", "x@y.z", "A%26B:x%40y.z", "A%26B"),
        ("a+b=c", "d?e#f/g", "a%2Bb%3Dc:d%3Fe%23f%2Fg", "a%2Bb%3Dc"),
        ("100%", "50%off", "100%25:50%25off", "100%25"),
        ("Société", "jürgen", "Soci%C3%A9t%C3%A9:j%C3%BCrgen", "Soci%C3%A9t%C3%A9"),
        ("例え", "用户", "%E4%BE%8B%E3%81%88:%E7%94%A8%E6%88%B7", "%E4%BE%8B%E3%81%88"),
        ("🔐", "😀", "%F0%9F%94%90:%F0%9F%98%80", "%F0%9F%94%90"),
    ],
)
def test_percent_encoding(issuer: str, account: str, label: str, issuer_param: str) -> None:
    uri = build_uri(secret=SEED, account=account, issuer=issuer)
    assert uri == f"otpauth://totp/{label}?secret={SEED_B32}&issuer={issuer_param}"
    assert "+" not in uri
    assert uri.isascii()
    back = parse_uri(uri)
    assert (back.issuer, back.account) == (issuer, account)


def test_secret_is_unpadded_base32() -> None:
    for size in range(16, 65):
        secret = bytes(range(size))
        uri = build_uri(secret=secret, account="a", issuer=None)
        value = uri.split("secret=", 1)[1]
        assert "=" not in value
        assert value == base64.b32encode(secret).decode().rstrip("=")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"account": "alice:smith"}, InvalidInput),
        ({"issuer": "Example:Co"}, InvalidInput),
        ({"account": ""}, InvalidInput),
        ({"issuer": ""}, InvalidInput),
        ({"account": "alice\n"}, InvalidInput),
        ({"account": "ali\x00ce"}, InvalidInput),
        ({"issuer": "Bank\x1b[31m"}, InvalidInput),
        ({"issuer": "Bank\x7f"}, InvalidInput),
        ({"account": "evil\u202egpj.exe"}, InvalidInput),  # right-to-left override
        ({"account": "zero\u200bwidth"}, InvalidInput),
        ({"account": "line\u2028sep"}, InvalidInput),
        ({"account": " alice"}, InvalidInput),
        ({"issuer": "Bank "}, InvalidInput),
        ({"account": "a" * 257}, InvalidInput),
        ({"issuer": "i" * 257}, InvalidInput),
        ({"account": "😀" * 200, "issuer": "😀" * 200}, InvalidInput),  # URI > 2048
        ({"account": b"alice"}, InvalidType),
        ({"issuer": 42}, InvalidType),
        ({"secret": b"x" * 15}, InvalidSecret),
        ({"secret": b"x" * 65}, InvalidSecret),
        ({"secret": SEED_B32}, InvalidType),
        ({"secret": bytearray(SEED)}, InvalidType),
        ({"algorithm": "MD5"}, InvalidInput),
        ({"algorithm": "sha1"}, InvalidInput),
        ({"algorithm": None}, InvalidType),
        ({"digits": 5}, InvalidInput),
        ({"digits": 9}, InvalidInput),
        ({"digits": True}, InvalidType),
        ({"digits": "6"}, InvalidType),
        ({"period": 0}, InvalidInput),
        ({"period": 3601}, InvalidInput),
        ({"period": 30.0}, InvalidType),
    ],
)
def test_build_uri_refuses(kwargs: dict[str, Any], error: type[MFAError]) -> None:
    arguments: dict[str, Any] = {"secret": SEED, "account": "alice", "issuer": "Example"}
    arguments.update(kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # validation happens before any warning
        with pytest.raises(error) as info:
            build_uri(**arguments)
    assert isinstance(info.value, MFAError)
    assert SEED_B32 not in str(info.value)


def test_longest_accepted_names() -> None:
    uri = build_uri(secret=SEED, account="a" * 256, issuer="i" * 256)
    assert parse_uri(uri).account == "a" * 256


# --------------------------------------------------------------------------------------
# OtpauthURI
# --------------------------------------------------------------------------------------


def test_otpauth_uri_dataclass() -> None:
    key_uri = OtpauthURI(secret=SEED, account="alice", issuer="Example")
    assert SEED_B32 not in repr(key_uri)
    assert repr(SEED) not in repr(key_uri)
    assert "alice" in repr(key_uri)
    with pytest.raises(dataclasses.FrozenInstanceError):
        key_uri.account = "mallory"  # type: ignore[misc]
    assert key_uri.to_uri() == build_uri(secret=SEED, account="alice", issuer="Example")
    assert OtpauthURI.parse(key_uri.to_uri()) == key_uri
    assert key_uri.is_default


def test_otpauth_uri_validates_on_construction() -> None:
    with pytest.raises(InvalidInput):
        OtpauthURI(secret=SEED, account="a:b", issuer=None)
    with pytest.raises(InvalidInput):
        OtpauthURI(secret=SEED, account="a", issuer=None, digits=10)


def test_to_uri_warns_for_non_default() -> None:
    key_uri = OtpauthURI(secret=SEED, account="a", issuer=None, period=60)
    assert not key_uri.is_default
    with pytest.warns(UnsupportedParameterWarning) as record:
        uri = key_uri.to_uri()
    assert uri.endswith("&period=60")
    assert record[0].filename == __file__


# --------------------------------------------------------------------------------------
# Interoperability: zxing-cpp decodes our PNG, pyotp parses our URI
# --------------------------------------------------------------------------------------


def _random_cases() -> list[dict[str, Any]]:
    rng = random.Random(20240607)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .-_@+&=?/#%éü例😀"
    cases: list[dict[str, Any]] = []
    for _ in range(6):

        def name(length: int) -> str:
            text = "".join(rng.choice(alphabet) for _ in range(length)).strip()
            return text or "x"

        cases.append(
            {
                "secret": rng.randbytes(rng.randint(16, 64)),
                "account": name(rng.randint(1, 40)),
                "issuer": rng.choice([None, name(rng.randint(1, 30))]),
            }
        )
    cases += [
        {"secret": SEED, "account": "alice@example.com", "issuer": "Example Co"},
        {"secret": SEED * 2, "account": "jürgen@例え.jp", "issuer": "Société Générale"},
        {"secret": os.urandom(32), "account": "😀 emoji user", "issuer": "🔐 Vault"},
        {
            "secret": os.urandom(64),
            "account": "ops@example.com",
            "issuer": "ACME",
            "algorithm": "SHA512",
            "digits": 8,
            "period": 60,
        },
        {
            "secret": os.urandom(32),
            "account": "x",
            "issuer": None,
            "algorithm": "SHA256",
            "digits": 7,
            "period": 15,
        },
    ]
    return cases


CASES = _random_cases()


@pytest.mark.parametrize("case", CASES)
def test_png_decodes_to_exact_uri(case: dict[str, Any]) -> None:
    uri = build(**case)
    png = qr_png(uri)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert decode_png(png) == [uri]


@pytest.mark.parametrize("case", CASES)
def test_pyotp_reads_our_uri(case: dict[str, Any]) -> None:
    uri = build(**case)
    otp = pyotp.parse_uri(uri)
    assert isinstance(otp, pyotp.TOTP)
    assert otp.secret == base64.b32encode(case["secret"]).decode().rstrip("=")
    assert otp.name == case["account"]
    assert otp.issuer == case["issuer"]
    assert otp.digits == case.get("digits", 6)
    assert otp.interval == case.get("period", 30)
    assert otp.digest().name == case.get("algorithm", "SHA1").lower()


@pytest.mark.parametrize("case", CASES)
def test_parse_round_trips_interop_cases(case: dict[str, Any]) -> None:
    uri = build(**case)
    parsed = parse_uri(uri)
    assert parsed == OtpauthURI(**case)
    assert build(**dataclasses.asdict(parsed)) == uri


# --------------------------------------------------------------------------------------
# parse_uri
# --------------------------------------------------------------------------------------

_SAFE_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .-_@+&=?/#%!~'*"
_safe_names = st.text(alphabet=_SAFE_ALPHABET, min_size=1, max_size=64).filter(
    lambda s: s == s.strip() and bool(s)
)
_unicode_names = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cc", "Cf", "Cs", "Zl", "Zp"), blacklist_characters=":"
    ),
    min_size=1,
    max_size=40,
).filter(lambda s: s == s.strip() and bool(s))
_parameters = st.fixed_dictionaries(
    {
        "algorithm": st.sampled_from(["SHA1", "SHA256", "SHA512"]),
        "digits": st.sampled_from([6, 7, 8]),
        "period": st.one_of(st.just(30), st.integers(1, 3600)),
    }
)


@settings(max_examples=200, deadline=None)
@given(
    secret=st.binary(min_size=16, max_size=64),
    account=_safe_names,
    issuer=st.none() | _safe_names,
    parameters=_parameters,
)
def test_parse_round_trips_build(
    secret: bytes, account: str, issuer: str | None, parameters: dict[str, Any]
) -> None:
    kwargs = {"secret": secret, "account": account, "issuer": issuer, **parameters}
    uri = build(**kwargs)
    parsed = parse_uri(uri)
    assert dataclasses.asdict(parsed) == kwargs
    assert build(**dataclasses.asdict(parsed)) == uri


@settings(max_examples=200, deadline=None)
@given(
    secret=st.binary(min_size=16, max_size=64),
    account=_unicode_names,
    issuer=st.none() | _unicode_names,
)
def test_parse_round_trips_unicode_names(secret: bytes, account: str, issuer: str | None) -> None:
    uri = build_uri(secret=secret, account=account, issuer=issuer)
    assert uri.isascii()
    assert parse_uri(uri) == OtpauthURI(secret=secret, account=account, issuer=issuer)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        # The separator may be a percent-encoded colon, optionally followed by spaces.
        (f"otpauth://totp/Example%3Aalice?secret={S}", ("Example", "alice")),
        (f"otpauth://totp/Example:%20%20alice?secret={S}&issuer=Example", ("Example", "alice")),
        # '+' means a space in the issuer query parameter (form encoding), not in the label.
        (f"otpauth://totp/My%20Bank:a+b?secret={S}&issuer=My+Bank", ("My Bank", "a+b")),
        # The issuer may be given only in the label or only as a parameter.
        (f"otpauth://totp/Example:alice?secret={S}", ("Example", "alice")),
        (f"otpauth://totp/alice?secret={S}&issuer=Example", ("Example", "alice")),
        (f"otpauth://totp/alice?secret={S}", (None, "alice")),
        # Lower-case or padded base32, explicit defaults, unknown extension parameters.
        (f"otpauth://totp/alice?secret={S.lower()}", (None, "alice")),
        (
            f"otpauth://totp/alice?secret={encode_secret(b'x' * 17)}%3D%3D%3D%3D"
            "&algorithm=SHA1&digits=6&period=30",
            (None, "alice"),
        ),
        (
            f"otpauth://totp/alice?image=https%3A%2F%2Fexample.com%2Flogo.png&secret={S}",
            (None, "alice"),
        ),
        (f"OTPAUTH://TOTP/alice?secret={S}", (None, "alice")),
    ],
)
def test_parse_accepts_conforming_variants(uri: str, expected: tuple[str | None, str]) -> None:
    parsed = parse_uri(uri)
    assert (parsed.issuer, parsed.account) == expected
    assert parsed.secret in (SEED, b"x" * 17)
    assert parsed.is_default


def test_parse_reads_non_default_parameters_without_warning() -> None:
    parsed = parse_uri(
        f"otpauth://totp/ACME:bob?secret={S}&issuer=ACME&algorithm=SHA256&digits=8&period=60"
    )
    assert (parsed.algorithm, parsed.digits, parsed.period) == ("SHA256", 8, 60)


_GOOD = f"otpauth://totp/Example:alice?secret={S}&issuer=Example"

MALFORMED: list[tuple[str, object, type[MFAError]]] = [
    ("other scheme", f"https://totp/alice?secret={S}", InvalidInput),
    ("no scheme", f"totp/alice?secret={S}", InvalidInput),
    ("hotp", f"otpauth://hotp/alice?secret={S}&counter=0", InvalidInput),
    ("unknown type", f"otpauth://motp/alice?secret={S}", InvalidInput),
    ("no label", f"otpauth://totp?secret={S}", InvalidInput),
    ("empty label", f"otpauth://totp/?secret={S}", InvalidInput),
    ("empty account", f"otpauth://totp/Example:?secret={S}", InvalidInput),
    ("blank account", f"otpauth://totp/Example:%20?secret={S}", InvalidInput),
    ("empty issuer prefix", f"otpauth://totp/:alice?secret={S}", InvalidInput),
    ("two colons", f"otpauth://totp/A:B:alice?secret={S}", InvalidInput),
    ("encoded extra colon", f"otpauth://totp/A:B%3Aalice?secret={S}", InvalidInput),
    ("slash in label", f"otpauth://totp/a/b?secret={S}", InvalidInput),
    ("control char in label", f"otpauth://totp/ali%0Ace?secret={S}", InvalidInput),
    ("bidi override in label", f"otpauth://totp/a%E2%80%AEb?secret={S}", InvalidInput),
    ("bad percent escape", f"otpauth://totp/ali%zzce?secret={S}", InvalidInput),
    ("truncated escape", f"otpauth://totp/alice%2?secret={S}", InvalidInput),
    ("invalid UTF-8", f"otpauth://totp/ali%FFce?secret={S}", InvalidInput),
    ("space", f"otpauth://totp/ali ce?secret={S}", InvalidInput),
    ("raw non-ASCII", f"otpauth://totp/jürgen?secret={S}", InvalidInput),
    ("newline", f"otpauth://totp/alice?secret={S}\n", InvalidInput),
    ("fragment", f"otpauth://totp/alice?secret={S}#x", InvalidInput),
    ("no query", "otpauth://totp/alice", InvalidSecret),
    ("missing secret", "otpauth://totp/alice?issuer=Example", InvalidSecret),
    ("empty secret", "otpauth://totp/alice?secret=", InvalidSecret),
    ("bad base32", "otpauth://totp/alice?secret=GEZDGNBVGY3TQOJ1GEZDGNBVGY3TQOJ0", InvalidSecret),
    ("impossible base32 length", f"otpauth://totp/alice?secret={S}A", InvalidSecret),
    ("80-bit secret", "otpauth://totp/alice?secret=JBSWY3DPEHPK3PXP", InvalidSecret),
    ("oversized secret", f"otpauth://totp/alice?secret={encode_secret(b'x' * 65)}", InvalidSecret),
    ("duplicate secret", f"otpauth://totp/alice?secret={S}&secret={S}", InvalidInput),
    ("duplicate issuer", f"{_GOOD}&issuer=Example", InvalidInput),
    ("duplicate digits", f"{_GOOD}&digits=6&digits=8", InvalidInput),
    ("issuer mismatch", f"otpauth://totp/Example:alice?secret={S}&issuer=Evil", InvalidInput),
    (
        "issuer case mismatch",
        f"otpauth://totp/Example:alice?secret={S}&issuer=example",
        InvalidInput,
    ),
    ("empty issuer parameter", f"otpauth://totp/alice?secret={S}&issuer=", InvalidInput),
    ("colon in issuer parameter", f"otpauth://totp/alice?secret={S}&issuer=a%3Ab", InvalidInput),
    ("digits 5", f"{_GOOD}&digits=5", InvalidInput),
    ("digits 10", f"{_GOOD}&digits=10", InvalidInput),
    ("digits not a number", f"{_GOOD}&digits=six", InvalidInput),
    ("digits leading zero", f"{_GOOD}&digits=06", InvalidInput),
    ("digits empty", f"{_GOOD}&digits=", InvalidInput),
    ("period 0", f"{_GOOD}&period=0", InvalidInput),
    ("period negative", f"{_GOOD}&period=-30", InvalidInput),
    ("period too long", f"{_GOOD}&period=3601", InvalidInput),
    ("period huge", f"{_GOOD}&period=99999999999999999999", InvalidInput),
    ("period fraction", f"{_GOOD}&period=30.5", InvalidInput),
    ("algorithm MD5", f"{_GOOD}&algorithm=MD5", InvalidInput),
    ("algorithm lower case", f"{_GOOD}&algorithm=sha256", InvalidInput),
    ("counter on totp", f"{_GOOD}&counter=1", InvalidInput),
    ("parameter without value", f"{_GOOD}&digits", InvalidInput),
    ("empty parameter", f"{_GOOD}&&digits=6", InvalidInput),
    ("trailing ampersand", f"{_GOOD}&", InvalidInput),
    ("bad parameter name", f"{_GOOD}&%73ecret=x", InvalidInput),
    ("too long", f"{_GOOD}&image={'a' * MAX_URI_LENGTH}", InvalidInput),
    ("empty string", "", InvalidInput),
    ("bytes", _GOOD.encode(), InvalidType),
    ("None", None, InvalidType),
]


@pytest.mark.parametrize(
    ("uri", "error"), [pytest.param(u, e, id=name) for name, u, e in MALFORMED]
)
def test_parse_refuses_malformed(uri: object, error: type[MFAError]) -> None:
    assert parse_uri(_GOOD).account == "alice"  # the template itself is fine
    with pytest.raises(error) as info:
        parse_uri(uri)  # type: ignore[arg-type]
    assert isinstance(info.value, MFAError)
    assert S not in str(info.value)  # never echo the secret


def test_malformed_table_is_large_enough() -> None:
    assert len(MALFORMED) >= 20


# --------------------------------------------------------------------------------------
# QR renderers
# --------------------------------------------------------------------------------------

URI = build_uri(secret=SEED, account="alice@example.com", issuer="Example Co")


def test_svg_is_inlinable() -> None:
    svg = qr_svg(URI)
    assert svg.startswith("<svg")
    assert "<?xml" not in svg
    root = ET.fromstring(svg)  # well-formed, standalone-valid SVG
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert 'stroke="#000"' in svg
    assert 'fill="#fff"' in svg  # opaque background


def test_svg_options() -> None:
    small = qr_svg(URI, scale=1, border=0)
    large = qr_svg(URI, scale=10, border=4)
    width_small = int(ET.fromstring(small).attrib["width"])
    width_large = int(ET.fromstring(large).attrib["width"])
    assert width_large == (width_small + 8) * 10
    assert 'stroke="#228b22"' in qr_svg(URI, dark="#228b22")


def test_png_geometry() -> None:
    image = Image.open(io.BytesIO(qr_png(URI, scale=3, border=2)))
    default = Image.open(io.BytesIO(qr_png(URI)))
    modules = image.size[0] // 3 - 4
    assert image.size == ((modules + 4) * 3,) * 2
    assert default.size == ((modules + 8) * 6,) * 2
    assert decode_png(qr_png(URI, scale=3, border=2)) == [URI]


def test_png_data_uri_decodes_to_png() -> None:
    data_uri = qr_data_uri(URI)
    prefix = "data:image/png;base64,"
    assert data_uri.startswith(prefix)
    png = base64.b64decode(data_uri[len(prefix) :], validate=True)
    assert png == qr_png(URI)
    assert decode_png(png) == [URI]


def test_svg_data_uri_decodes_to_svg() -> None:
    data_uri = qr_data_uri(URI, kind="svg")
    prefix = "data:image/svg+xml;base64,"
    assert data_uri.startswith(prefix)
    assert base64.b64decode(data_uri[len(prefix) :], validate=True).decode() == qr_svg(URI)


def test_terminal_compact() -> None:
    out = io.StringIO()
    qr_terminal(URI, out=out)
    text = out.getvalue()
    assert text.strip()
    assert "\033[" not in text
    assert set(text) <= {" ", "\u2580", "\u2584", "\u2588", "\n"}


def test_terminal_ansi() -> None:
    out = io.StringIO()
    qr_terminal(URI, out=out, compact=False)
    assert "\033[" in out.getvalue()


def test_terminal_defaults_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    qr_terminal(URI)
    assert capsys.readouterr().out.strip()


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: qr_png(b"otpauth://"), InvalidType),  # type: ignore[arg-type]
        (lambda: qr_png(""), InvalidInput),
        (lambda: qr_png("x" * 8000), InvalidInput),
        (lambda: qr_png(URI, scale=0), InvalidInput),
        (lambda: qr_png(URI, scale=65), InvalidInput),
        (lambda: qr_png(URI, border=-1), InvalidInput),
        (lambda: qr_png(URI, scale=True), InvalidType),
        (lambda: qr_svg(URI, dark="not-a-colour"), InvalidInput),
        (lambda: qr_svg(URI, dark=0), InvalidType),  # type: ignore[arg-type]
        (lambda: qr_data_uri(URI, kind="gif"), InvalidInput),  # type: ignore[arg-type]
        (lambda: qr_terminal(URI, out=io.StringIO(), compact=1), InvalidType),  # type: ignore[arg-type]
    ],
)
def test_renderers_refuse_bad_arguments(call: Any, error: type[MFAError]) -> None:
    with pytest.raises(error):
        call()


# --------------------------------------------------------------------------------------
# Lazy import of segno
# --------------------------------------------------------------------------------------


def test_import_does_not_load_segno() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    result = subprocess.run(
        [sys.executable, "-c", "import sys, mfakit.qr; print('segno' in sys.modules)"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip() == "False"
