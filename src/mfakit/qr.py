"""Key URIs and QR codes for enrolling TOTP authenticator apps (SECURITY.md 8).

An authenticator app is enrolled by scanning a QR code that holds an ``otpauth://`` URI in
the *Key URI format* of Google Authenticator
(https://github.com/google/google-authenticator/wiki/Key-Uri-Format)::

    otpauth://totp/Example%20Co:alice%40example.com?secret=GEZDGNBV...&issuer=Example%20Co

What this module writes, and why:

* The label is ``issuer:account``: each part is percent-encoded with
  :func:`urllib.parse.quote` and ``safe=""`` (a space becomes ``%20``, never ``+``), joined by
  a literal colon. The issuer is also sent as the ``issuer`` parameter, which is what current
  apps use; the label prefix is for older ones. Neither part may contain a colon.
* The secret is upper-case base32 without ``=`` padding, as the format asks.
* ``algorithm``, ``digits`` and ``period`` are written **only when they differ from the
  defaults** SHA1 / 6 / 30. That is the widest-compatible form: it is what Google
  Authenticator and pyotp themselves produce, it keeps the QR code small, and an app that
  ignores (or mishandles) these parameters sees exactly the URI it expects. Non-default values
  are allowed but raise :class:`~mfakit.exceptions.UnsupportedParameterWarning`, because many
  apps silently ignore them and then show codes that never verify.
* Only TOTP is supported; HOTP URIs are refused.

QR codes are full QR symbols (never Micro QR) at error correction level **M** (15% of the
symbol may be lost), the usual choice for codes shown on a screen; segno raises the level for
free when that does not make the symbol larger. segno is imported lazily, inside the
renderers, so that ``import mfakit.qr`` stays cheap for hosts that only need the URI.
"""

from __future__ import annotations

import base64
import io
import re
import sys
import unicodedata
import urllib.parse
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal, TextIO, cast

from mfakit.exceptions import (
    InvalidInput,
    InvalidSecret,
    InvalidType,
    UnsupportedParameterWarning,
)
from mfakit.hazmat.otp import ALGORITHMS, Algorithm, decode_secret, encode_secret

if TYPE_CHECKING:  # pragma: no cover - segno is imported lazily at run time
    import segno

__all__ = [
    "MAX_LABEL_PART_LENGTH",
    "MAX_SECRET_BYTES",
    "MAX_URI_LENGTH",
    "MIN_SECRET_BYTES",
    "OtpauthURI",
    "build_uri",
    "parse_uri",
    "qr_data_uri",
    "qr_png",
    "qr_svg",
    "qr_terminal",
]

#: Longest issuer or account name, in characters.
MAX_LABEL_PART_LENGTH: Final = 256
#: Longest URI :func:`build_uri` produces and :func:`parse_uri` accepts, in characters. It
#: fits in a level-M QR code (version 40 holds 2331 bytes).
MAX_URI_LENGTH: Final = 2048
#: Shortest secret accepted: RFC 4226 R6 requires at least 128 bits.
MIN_SECRET_BYTES: Final = 16
#: Longest secret accepted: 64 bytes is a full SHA512 block; more only enlarges the QR code.
MAX_SECRET_BYTES: Final = 64

_DEFAULT_ALGORITHM: Final = "SHA1"
_DEFAULT_DIGITS: Final = 6
_DEFAULT_PERIOD: Final = 30
_DIGITS: Final = (6, 7, 8)
_MIN_PERIOD: Final = 1
_MAX_PERIOD: Final = 3600
#: Unicode categories refused in an issuer or account: controls, format characters (such as
#: bidirectional overrides, which can disguise a label), surrogates and line/paragraph
#: separators.
_REFUSED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})

_SCHEME: Final = "otpauth://"
#: A label as it may appear in the URI path: RFC 3986 ``pchar`` without ``/``.
_RAW_LABEL: Final = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})+")
#: A query value: RFC 3986 query characters except the ``&`` separator.
_RAW_VALUE: Final = re.compile(r"(?:[A-Za-z0-9\-._~!$'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*")
_PARAM_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_\-]{0,31}")
_DIGITS_VALUE: Final = re.compile(r"[1-9][0-9]{0,3}")
_KNOWN_PARAMS: Final = frozenset({"secret", "issuer", "algorithm", "digits", "period"})

#: Error correction level of every QR code (see the module docstring).
_ERROR_LEVEL: Final = "M"
_MAX_SCALE: Final = 64
_MAX_BORDER: Final = 64


# --------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------


def _check_text(value: object, what: str) -> str:
    """Validate an issuer or account name and return it unchanged."""
    if not isinstance(value, str):
        raise InvalidType(f"{what} must be str, not {type(value).__name__}")
    if not value:
        raise InvalidInput(f"{what} must not be empty")
    if len(value) > MAX_LABEL_PART_LENGTH:
        raise InvalidInput(f"{what} is longer than {MAX_LABEL_PART_LENGTH} characters")
    if ":" in value:
        raise InvalidInput(
            f"{what} must not contain ':' (the Key URI format uses it to separate the issuer "
            "from the account name)"
        )
    for index, char in enumerate(value):
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            raise InvalidInput(
                f"{what} contains a control or format character U+{ord(char):04X} at index {index}"
            )
    if value != value.strip():
        raise InvalidInput(
            f"{what} must not start or end with whitespace (apps strip it, so the account "
            "they show would differ from the one enrolled)"
        )
    return value


def _check_secret(secret: object) -> bytes:
    if not isinstance(secret, bytes):
        raise InvalidType(f"secret must be raw bytes, not {type(secret).__name__}")
    if not MIN_SECRET_BYTES <= len(secret) <= MAX_SECRET_BYTES:
        raise InvalidSecret(
            f"secret must be {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes long "
            f"(RFC 4226 R6 requires at least 128 bits), got {len(secret)} bytes"
        )
    return secret


def _check_int(value: object, what: str) -> int:
    # bool is an int subclass; True as a digit count is certainly a mistake.
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidType(f"{what} must be int, not {type(value).__name__}")
    return value


def _check_parameters(algorithm: object, digits: object, period: object) -> None:
    if not isinstance(algorithm, str):
        raise InvalidType(f"algorithm must be str, not {type(algorithm).__name__}")
    if algorithm not in ALGORITHMS:
        raise InvalidInput(
            f"algorithm must be one of {', '.join(ALGORITHMS)} (upper case), got {algorithm!r}"
        )
    if _check_int(digits, "digits") not in _DIGITS:
        raise InvalidInput(f"digits must be 6, 7 or 8, got {digits!r}")
    if not _MIN_PERIOD <= _check_int(period, "period") <= _MAX_PERIOD:
        raise InvalidInput(f"period must be {_MIN_PERIOD} to {_MAX_PERIOD} seconds, got {period!r}")


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="", encoding="utf-8", errors="strict")


# --------------------------------------------------------------------------------------
# Key URI
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OtpauthURI:
    """The content of an ``otpauth://totp/`` Key URI.

    Every field is validated on construction, so an instance always renders to a URI that
    :func:`parse_uri` accepts. The secret is left out of ``repr()``.

    Attributes:
        secret: The shared secret, raw bytes (16 to 64 bytes).
        account: The account name shown in the app, e.g. an e-mail address. No colon.
        issuer: The service name shown in the app, or ``None``. No colon.
        algorithm: ``"SHA1"``, ``"SHA256"`` or ``"SHA512"``.
        digits: Code length: 6, 7 or 8.
        period: Time step in seconds, 1 to 3600.

    Raises:
        InvalidType: If a field has the wrong type.
        InvalidSecret: If the secret is too short or too long.
        InvalidInput: If any other field is out of range.
    """

    secret: bytes = field(repr=False)
    account: str
    issuer: str | None
    algorithm: Algorithm = "SHA1"
    digits: int = 6
    period: int = 30

    def __post_init__(self) -> None:
        _check_secret(self.secret)
        _check_text(self.account, "account")
        if self.issuer is not None:
            _check_text(self.issuer, "issuer")
        _check_parameters(self.algorithm, self.digits, self.period)
        if len(self._render()) > MAX_URI_LENGTH:
            raise InvalidInput(
                f"the Key URI would be longer than {MAX_URI_LENGTH} characters; "
                "shorten the issuer or account name"
            )

    @property
    def is_default(self) -> bool:
        """``True`` when algorithm, digits and period are the defaults SHA1 / 6 / 30."""
        return (self.algorithm, self.digits, self.period) == (
            _DEFAULT_ALGORITHM,
            _DEFAULT_DIGITS,
            _DEFAULT_PERIOD,
        )

    def to_uri(self) -> str:
        """Render the Key URI.

        Returns:
            ``otpauth://totp/<issuer>:<account>?secret=...&issuer=...`` followed by
            ``algorithm``, ``digits`` and ``period`` when they are not the defaults.

        Warns:
            UnsupportedParameterWarning: When algorithm, digits or period is not the default.
        """
        self._warn_if_unusual(stacklevel=2)
        return self._render()

    @classmethod
    def parse(cls, uri: str) -> OtpauthURI:
        """Parse a Key URI; see :func:`parse_uri`."""
        return parse_uri(uri)

    def _render(self) -> str:
        label = _quote(self.account)
        params = [("secret", encode_secret(self.secret))]
        if self.issuer is not None:
            label = f"{_quote(self.issuer)}:{label}"
            params.append(("issuer", _quote(self.issuer)))
        if self.algorithm != _DEFAULT_ALGORITHM:
            params.append(("algorithm", self.algorithm))
        if self.digits != _DEFAULT_DIGITS:
            params.append(("digits", str(self.digits)))
        if self.period != _DEFAULT_PERIOD:
            params.append(("period", str(self.period)))
        query = "&".join(f"{name}={value}" for name, value in params)
        return f"{_SCHEME}totp/{label}?{query}"

    def _warn_if_unusual(self, *, stacklevel: int) -> None:
        if self.is_default:
            return
        warnings.warn(
            f"algorithm={self.algorithm!r}, digits={self.digits}, period={self.period} "
            "differ from SHA1 / 6 / 30: many authenticator apps (Google Authenticator among "
            "them) ignore these parameters and then show codes that never verify",
            UnsupportedParameterWarning,
            stacklevel=stacklevel + 1,
        )


def build_uri(
    *,
    secret: bytes,
    account: str,
    issuer: str | None,
    algorithm: Algorithm = "SHA1",
    digits: int = 6,
    period: int = 30,
) -> str:
    """Build an ``otpauth://totp/`` Key URI for enrolling an authenticator app.

    Args:
        secret: The shared secret, raw bytes (16 to 64 bytes); written as unpadded base32.
        account: The account name shown in the app, e.g. ``"alice@example.com"``.
        issuer: The service name shown in the app (strongly recommended), or ``None``.
        algorithm: ``"SHA1"`` (default), ``"SHA256"`` or ``"SHA512"``.
        digits: Code length: 6 (default), 7 or 8.
        period: Time step in seconds, 1 to 3600 (default 30).

    Returns:
        The URI. ``algorithm``, ``digits`` and ``period`` appear only when not the defaults.

    Raises:
        InvalidType: If an argument has the wrong type.
        InvalidSecret: If the secret is shorter than 16 or longer than 64 bytes.
        InvalidInput: If the account is empty; the issuer is empty; either contains a colon,
            a control or format character, or leading/trailing whitespace, or is longer than
            256 characters; a parameter is out of range; or the URI would exceed 2048
            characters.

    Warns:
        UnsupportedParameterWarning: When algorithm, digits or period is not SHA1 / 6 / 30.
    """
    key_uri = OtpauthURI(
        secret=secret,
        account=account,
        issuer=issuer,
        algorithm=algorithm,
        digits=digits,
        period=period,
    )
    key_uri._warn_if_unusual(stacklevel=2)
    return key_uri._render()


def _unquote(raw: str, what: str, *, plus_is_space: bool) -> str:
    unquote = urllib.parse.unquote_plus if plus_is_space else urllib.parse.unquote
    try:
        return unquote(raw, encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{what} is not percent-encoded UTF-8") from exc


def _parse_query(query: str) -> dict[str, str]:
    """Split the query into raw (still percent-encoded) values, refusing duplicates."""
    params: dict[str, str] = {}
    for part in query.split("&"):
        name, sep, value = part.partition("=")
        if not sep:
            raise InvalidInput("every query parameter must have the form name=value")
        if not _PARAM_NAME.fullmatch(name):
            raise InvalidInput("a query parameter has an invalid name")
        if not _RAW_VALUE.fullmatch(value):
            raise InvalidInput(f"the {name!r} parameter contains a character not allowed there")
        if name in params:
            raise InvalidInput(f"the {name!r} parameter appears more than once")
        params[name] = value
    return params


def _parse_label(raw_label: str) -> tuple[str | None, str]:
    if not _RAW_LABEL.fullmatch(raw_label):
        raise InvalidInput(
            "the label is empty or contains a character that must be percent-encoded"
        )
    label = _unquote(raw_label, "the label", plus_is_space=False)
    if label.count(":") > 1:
        raise InvalidInput("the label contains more than one ':'")
    prefix, sep, account = label.rpartition(":")
    # The Key URI format allows optional spaces before the account name.
    account = account.lstrip(" ")
    return (prefix if sep else None), account


def _parse_int(raw: str, what: str) -> int:
    if not _DIGITS_VALUE.fullmatch(raw):
        raise InvalidInput(f"{what} must be a positive decimal integer without leading zeros")
    return int(raw)


def parse_uri(uri: str) -> OtpauthURI:
    """Parse an ``otpauth://totp/`` Key URI strictly.

    The inverse of :func:`build_uri`: ``parse_uri(build_uri(**f))`` gives back the fields
    ``f``. It also accepts what other conforming issuers write: a percent-encoded (``%3A``)
    label separator, spaces before the account name, ``+`` for a space in the ``issuer``
    parameter, lower-case or padded base32, explicit default parameters, and extension
    parameters it does not know (such as ``image``), which are ignored.

    Parsing never warns, whatever the parameters; :meth:`OtpauthURI.to_uri` does.

    Args:
        uri: The URI text, at most 2048 characters of printable ASCII.

    Returns:
        The parsed, validated fields.

    Raises:
        InvalidType: If ``uri`` is not ``str``.
        InvalidSecret: If the secret is missing, empty, not base32, or shorter than 16 or
            longer than 64 bytes.
        InvalidInput: If the URI is too long, contains whitespace, control or non-ASCII
            characters or a fragment; is not ``otpauth://totp/``; its label, issuer or
            account fails the rules of :func:`build_uri`; the label prefix and the ``issuer``
            parameter differ; a parameter is duplicated, malformed or out of range; or it
            carries the HOTP-only ``counter`` parameter.
    """
    if not isinstance(uri, str):
        raise InvalidType(f"a Key URI must be str, not {type(uri).__name__}")
    if len(uri) > MAX_URI_LENGTH:
        raise InvalidInput(f"a Key URI must be at most {MAX_URI_LENGTH} characters")
    if not all("!" <= char <= "~" for char in uri):
        raise InvalidInput(
            "a Key URI must be printable ASCII without spaces; percent-encode everything else"
        )
    if uri[: len(_SCHEME)].lower() != _SCHEME:
        raise InvalidInput("not a Key URI: the scheme must be otpauth://")
    if "#" in uri:
        raise InvalidInput("a Key URI must not have a fragment ('#')")
    otp_type, slash, rest = uri[len(_SCHEME) :].partition("/")
    if otp_type.lower() == "hotp":
        raise InvalidInput("HOTP Key URIs are not supported; only otpauth://totp/")
    if otp_type.lower() != "totp" or not slash:
        raise InvalidInput("not a TOTP Key URI: expected otpauth://totp/<label>?<parameters>")
    raw_label, question, query = rest.partition("?")
    label_issuer, account = _parse_label(raw_label)
    params = _parse_query(query) if question else {}

    if "counter" in params:
        raise InvalidInput("the 'counter' parameter belongs to HOTP, not TOTP")
    raw_secret = params.get("secret")
    if not raw_secret:
        raise InvalidSecret("the Key URI has no secret parameter, or it is empty")
    secret = decode_secret(_unquote(raw_secret, "the secret", plus_is_space=True))

    issuer = label_issuer
    if "issuer" in params:
        param_issuer = _unquote(params["issuer"], "the issuer", plus_is_space=True)
        _check_text(param_issuer, "the issuer parameter")
        if label_issuer is not None and label_issuer != param_issuer:
            raise InvalidInput("the issuer label prefix and the issuer parameter differ")
        issuer = param_issuer

    algorithm = params.get("algorithm", _DEFAULT_ALGORITHM)
    if algorithm not in ALGORITHMS:
        raise InvalidInput("algorithm must be SHA1, SHA256 or SHA512 (upper case)")
    digits = _parse_int(params.get("digits", str(_DEFAULT_DIGITS)), "digits")
    period = _parse_int(params.get("period", str(_DEFAULT_PERIOD)), "period")

    return OtpauthURI(
        secret=secret,
        account=account,
        issuer=issuer,
        algorithm=cast(Algorithm, algorithm),  # checked against ALGORITHMS above
        digits=digits,
        period=period,
    )


# --------------------------------------------------------------------------------------
# QR codes
# --------------------------------------------------------------------------------------


def _make_qr(data: object) -> segno.QRCode:
    if not isinstance(data, str):
        raise InvalidType(f"QR data must be str, not {type(data).__name__}")
    if not data:
        raise InvalidInput("QR data must not be empty")
    import segno

    try:
        return segno.make_qr(data, error=_ERROR_LEVEL)
    except segno.DataOverflowError as exc:
        raise InvalidInput(f"{len(data)} characters do not fit in a QR code") from exc


def _check_geometry(scale: object, border: object) -> None:
    if not 1 <= _check_int(scale, "scale") <= _MAX_SCALE:
        raise InvalidInput(f"scale must be 1 to {_MAX_SCALE}, got {scale!r}")
    if not 0 <= _check_int(border, "border") <= _MAX_BORDER:
        raise InvalidInput(f"border must be 0 to {_MAX_BORDER}, got {border!r}")


def qr_svg(data: str, *, scale: int = 4, border: int = 4, dark: str = "#000") -> str:
    """Render ``data`` (normally a Key URI) as an SVG QR code.

    The XML declaration is omitted so the text can be inlined in HTML; the SVG namespace is
    kept so it is also a valid standalone ``.svg`` file. The background is opaque white, so
    the code stays scannable on dark pages.

    Args:
        data: The text to encode.
        scale: Size of one module in SVG user units, 1 to 64.
        border: Quiet zone in modules, 0 to 64 (scanners expect at least 4).
        dark: Colour of the dark modules, any colour segno accepts (``"#000"``, ``"navy"``).

    Returns:
        The SVG document as text.

    Raises:
        InvalidType: If ``data`` is not ``str`` or ``scale``/``border`` is not ``int``.
        InvalidInput: If ``data`` is empty or too long, a size is out of range, or ``dark``
            is not a colour.
    """
    _check_geometry(scale, border)
    if not isinstance(dark, str):
        raise InvalidType(f"dark must be str, not {type(dark).__name__}")
    qr = _make_qr(data)
    buffer = io.BytesIO()
    try:
        qr.save(
            buffer,
            kind="svg",
            scale=scale,
            border=border,
            dark=dark,
            light="#fff",
            xmldecl=False,
            svgns=True,
            nl=False,
        )
    except ValueError as exc:
        raise InvalidInput("dark is not a colour segno understands") from exc
    return buffer.getvalue().decode("utf-8")


def qr_png(data: str, *, scale: int = 6, border: int = 4) -> bytes:
    """Render ``data`` (normally a Key URI) as a black-on-white PNG QR code.

    Args:
        data: The text to encode.
        scale: Size of one module in pixels, 1 to 64.
        border: Quiet zone in modules, 0 to 64 (scanners expect at least 4).

    Returns:
        The PNG file content.

    Raises:
        InvalidType: If ``data`` is not ``str`` or ``scale``/``border`` is not ``int``.
        InvalidInput: If ``data`` is empty or too long, or a size is out of range.
    """
    _check_geometry(scale, border)
    qr = _make_qr(data)
    buffer = io.BytesIO()
    qr.save(buffer, kind="png", scale=scale, border=border, dark="#000", light="#fff")
    return buffer.getvalue()


def qr_data_uri(data: str, *, kind: Literal["png", "svg"] = "png") -> str:
    """Render ``data`` as a base64 ``data:`` URI, for an ``<img src=...>``.

    Uses the defaults of :func:`qr_png` or :func:`qr_svg`.

    Args:
        data: The text to encode.
        kind: ``"png"`` (``data:image/png;base64,...``) or ``"svg"``
            (``data:image/svg+xml;base64,...``).

    Returns:
        The data URI.

    Raises:
        InvalidType: If ``data`` is not ``str``.
        InvalidInput: If ``data`` is empty or too long, or ``kind`` is unknown.
    """
    if kind == "png":
        mime, content = "image/png", qr_png(data)
    elif kind == "svg":
        mime, content = "image/svg+xml", qr_svg(data).encode("utf-8")
    else:
        raise InvalidInput(f"kind must be 'png' or 'svg', got {kind!r}")
    return f"data:{mime};base64,{base64.b64encode(content).decode('ascii')}"


def qr_terminal(data: str, *, out: TextIO | None = None, compact: bool = True) -> None:
    """Print ``data`` as a QR code on a terminal (for the command-line demo).

    Args:
        data: The text to encode.
        out: Where to write; ``sys.stdout`` (looked up at call time) when ``None``.
        compact: Use Unicode half blocks (two rows of modules per line, no escape codes;
            light modules are drawn, which suits the usual dark terminal). When ``False``,
            use ANSI colour escape codes with two spaces per module.

    Raises:
        InvalidType: If ``data`` is not ``str`` or ``compact`` is not ``bool``.
        InvalidInput: If ``data`` is empty or too long.
    """
    if not isinstance(compact, bool):
        raise InvalidType(f"compact must be bool, not {type(compact).__name__}")
    qr = _make_qr(data)
    qr.terminal(out=sys.stdout if out is None else out, compact=compact)
