"""Published test vectors for the HOTP/TOTP arithmetic in :mod:`mfakit.hazmat.otp`.

The data lives in ``tests/vectors/``:

* ``rfc4226_hotp.json`` -- RFC 4226 Appendix D (and the section 5.4 worked example);
* ``rfc6238_totp.json`` -- RFC 6238 Appendix B, all 18 rows, with the per-algorithm seeds of
  the Appendix A reference implementation (20, 32 and 64 bytes).
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import types
from pathlib import Path
from typing import Any, Final, TypedDict, cast

import pytest

from mfakit.exceptions import InvalidInput
from mfakit.hazmat import otp
from mfakit.hazmat.otp import Algorithm, hotp, time_step, totp

VECTORS_DIR: Final = Path(__file__).parent / "vectors"


class HotpVector(TypedDict):
    counter: int
    hmac_hex: str
    truncated_hex: str
    truncated_decimal: int
    hotp: str


class TruncationExample(TypedDict):
    source: str
    hmac_hex: str
    offset: int
    dbc_hex: str
    snum: int
    hotp: str


class HotpFile(TypedDict):
    source: str
    algorithm: Algorithm
    digits: int
    secret_ascii: str
    secret_hex: str
    vectors: list[HotpVector]
    section_5_4_example: TruncationExample


class Seed(TypedDict):
    ascii: str
    hex: str
    length: int


class TotpVector(TypedDict):
    time: int
    utc: str
    t_hex: str
    algorithm: Algorithm
    totp: str


class TotpFile(TypedDict):
    source: str
    note: str
    t0: int
    period: int
    digits: int
    seeds: dict[str, Seed]
    vectors: list[TotpVector]


def _load(name: str) -> Any:
    with (VECTORS_DIR / name).open(encoding="utf-8") as fh:
        return json.load(fh)


HOTP: Final = cast(HotpFile, _load("rfc4226_hotp.json"))
TOTP: Final = cast(TotpFile, _load("rfc6238_totp.json"))

HOTP_KEY: Final = bytes.fromhex(HOTP["secret_hex"])
SEED20: Final = bytes.fromhex(TOTP["seeds"]["SHA1"]["hex"])


def _hotp_id(v: HotpVector) -> str:
    return f"counter={v['counter']}"


def _totp_id(v: TotpVector) -> str:
    return f"{v['algorithm']}-t={v['time']}"


def _seed(algorithm: str) -> bytes:
    return bytes.fromhex(TOTP["seeds"][algorithm]["hex"])


HOTP_CASES: Final = [pytest.param(v, id=_hotp_id(v)) for v in HOTP["vectors"]]
TOTP_CASES: Final = [pytest.param(v, id=_totp_id(v)) for v in TOTP["vectors"]]
TOTP_NON_SHA1_CASES: Final = [
    pytest.param(v, id=_totp_id(v)) for v in TOTP["vectors"] if v["algorithm"] != "SHA1"
]


# --------------------------------------------------------------------------- data sanity


def test_hotp_file_shape() -> None:
    assert "RFC 4226" in HOTP["source"]
    assert HOTP["secret_ascii"].encode("ascii") == HOTP_KEY
    assert HOTP_KEY == b"12345678901234567890"
    assert [v["counter"] for v in HOTP["vectors"]] == list(range(10))


def test_totp_file_shape() -> None:
    assert "RFC 6238" in TOTP["source"]
    assert len(TOTP["vectors"]) == 18
    assert {v["algorithm"] for v in TOTP["vectors"]} == {"SHA1", "SHA256", "SHA512"}
    assert {v["time"] for v in TOTP["vectors"]} == {
        59,
        1111111109,
        1111111111,
        1234567890,
        2000000000,
        20000000000,
    }
    for algorithm, length in (("SHA1", 20), ("SHA256", 32), ("SHA512", 64)):
        seed = TOTP["seeds"][algorithm]
        assert seed["ascii"].encode("ascii") == _seed(algorithm)
        assert len(_seed(algorithm)) == seed["length"] == length
        # Each seed is "1234567890" repeated and cut to the hash output length.
        assert seed["ascii"] == ("1234567890" * 7)[:length]
    assert all(len(v["totp"]) == TOTP["digits"] == 8 for v in TOTP["vectors"])


@pytest.mark.parametrize("vector", TOTP_CASES)
def test_totp_utc_column(vector: TotpVector) -> None:
    """The UTC column of Appendix B agrees with the Unix time column."""
    when = dt.datetime.fromtimestamp(vector["time"], dt.timezone.utc)
    assert when.strftime("%Y-%m-%d %H:%M:%S") == vector["utc"]


# --------------------------------------------------------------------------- RFC 4226


@pytest.mark.parametrize("vector", HOTP_CASES)
def test_hotp_rfc4226(vector: HotpVector) -> None:
    assert hotp(HOTP_KEY, vector["counter"]) == vector["hotp"]
    assert hotp(HOTP_KEY, vector["counter"], digits=6, algorithm="SHA1") == vector["hotp"]


@pytest.mark.parametrize("vector", HOTP_CASES)
def test_hotp_rfc4226_dynamic_truncation(vector: HotpVector) -> None:
    """The Appendix D intermediate values; with 10 digits the modulus exceeds 2**31, so
    hotp() returns Snum itself."""
    mac = hmac.digest(HOTP_KEY, vector["counter"].to_bytes(8, "big"), "sha1")
    assert mac.hex() == vector["hmac_hex"]
    offset = mac[-1] & 0x0F
    dbc = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF  # drop the sign bit
    assert dbc == int(vector["truncated_hex"], 16)
    assert int(vector["truncated_hex"], 16) == vector["truncated_decimal"]
    assert hotp(HOTP_KEY, vector["counter"], digits=10) == f"{vector['truncated_decimal']:010d}"


@pytest.mark.parametrize("digits", [6, 7, 8, 9, 10], ids=lambda d: f"digits={d}")
@pytest.mark.parametrize("vector", HOTP_CASES)
def test_hotp_rfc4226_every_length(vector: HotpVector, digits: int) -> None:
    expected = str(vector["truncated_decimal"] % 10**digits).zfill(digits)
    assert hotp(HOTP_KEY, vector["counter"], digits=digits) == expected


def test_hotp_rfc4226_section_5_4_example(monkeypatch: pytest.MonkeyPatch) -> None:
    """Section 5.4: feed the worked example's HMAC through hotp()'s truncation."""
    example = HOTP["section_5_4_example"]
    mac = bytes.fromhex(example["hmac_hex"])
    assert mac[-1] & 0x0F == example["offset"]
    assert mac[example["offset"] : example["offset"] + 4].hex() == example["dbc_hex"]

    calls: list[tuple[bytes, bytes, str]] = []

    def fake_digest(key: bytes, msg: bytes, digest: str) -> bytes:
        calls.append((key, msg, digest))
        return mac

    monkeypatch.setattr(otp, "hmac", types.SimpleNamespace(digest=fake_digest))
    assert hotp(b"k", 7) == example["hotp"]
    assert hotp(b"k", 7, digits=10) == f"{example['snum']:010d}"
    # The counter is packed as 8 bytes, big-endian (RFC 4226 section 5.1).
    assert calls[0] == (b"k", b"\x00\x00\x00\x00\x00\x00\x00\x07", "sha1")


# --------------------------------------------------------------------------- RFC 6238


@pytest.mark.parametrize("vector", TOTP_CASES)
def test_time_step_rfc6238(vector: TotpVector) -> None:
    expected = int(vector["t_hex"], 16)
    assert len(vector["t_hex"]) == 16
    assert time_step(vector["time"]) == expected
    assert time_step(vector["time"], period=TOTP["period"], t0=TOTP["t0"]) == expected
    assert time_step(float(vector["time"])) == expected


@pytest.mark.parametrize("vector", TOTP_CASES)
def test_totp_rfc6238(vector: TotpVector) -> None:
    key = _seed(vector["algorithm"])
    code = totp(
        key,
        vector["time"],
        period=TOTP["period"],
        t0=TOTP["t0"],
        digits=TOTP["digits"],
        algorithm=vector["algorithm"],
    )
    assert code == vector["totp"]
    # TOTP is HOTP over the time step T.
    assert (
        hotp(key, int(vector["t_hex"], 16), digits=8, algorithm=vector["algorithm"])
        == vector["totp"]
    )


@pytest.mark.parametrize("vector", TOTP_CASES)
def test_totp_rfc6238_six_digits_is_suffix(vector: TotpVector) -> None:
    """The 6-digit code is the 8-digit one mod 10**6, i.e. its last six characters."""
    key = _seed(vector["algorithm"])
    six = totp(key, vector["time"], digits=6, algorithm=vector["algorithm"])
    assert six == vector["totp"][-6:]
    assert int(six) == int(vector["totp"]) % 10**6
    seven = totp(key, vector["time"], digits=7, algorithm=vector["algorithm"])
    assert seven == vector["totp"][-7:]


@pytest.mark.parametrize("vector", TOTP_NON_SHA1_CASES)
def test_totp_rfc6238_twenty_byte_seed_is_wrong(vector: TotpVector) -> None:
    """The classic mistake: the 20-byte seed with SHA256/SHA512 does not give the RFC table.

    Libraries that take the Appendix B prose literally fail these rows; this guards against
    the vector file being "fixed" the wrong way.
    """
    wrong = totp(SEED20, vector["time"], digits=8, algorithm=vector["algorithm"])
    assert wrong != vector["totp"]
    right = totp(
        _seed(vector["algorithm"]), vector["time"], digits=8, algorithm=vector["algorithm"]
    )
    assert right == vector["totp"]


def test_totp_rfc6238_last_row_time_exceeds_32_bits() -> None:
    """20000000000 does not fit a 32-bit time_t (the year-2038/2106 limits)."""
    last = max(v["time"] for v in TOTP["vectors"])
    assert last == 20000000000
    assert last > 2**32
    assert time_step(last) == 0x27BC86AA


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("digits", [-1, 0, 1, 4, 5, 11, 12, 20], ids=lambda d: f"digits={d}")
def test_hotp_refuses_unsupported_digits(digits: int) -> None:
    with pytest.raises(InvalidInput):
        hotp(HOTP_KEY, 0, digits=digits)


@pytest.mark.parametrize("digits", [6, 7, 8, 9, 10], ids=lambda d: f"digits={d}")
def test_hotp_accepts_supported_digits(digits: int) -> None:
    code = hotp(HOTP_KEY, 0, digits=digits)
    assert len(code) == digits
    assert code.isascii()
    assert code.isdigit()


@pytest.mark.parametrize(
    "counter",
    [-1, -(2**63), 2**64, 2**64 + 1, 2**100],
    ids=["-1", "-2**63", "2**64", "2**64+1", "2**100"],
)
def test_hotp_refuses_out_of_range_counter(counter: int) -> None:
    with pytest.raises(InvalidInput):
        hotp(HOTP_KEY, counter)


@pytest.mark.parametrize(
    "counter", [0, 2**32, 2**63, 2**64 - 1], ids=["0", "2**32", "2**63", "2**64-1"]
)
def test_hotp_accepts_counter_range_edges(counter: int) -> None:
    assert len(hotp(HOTP_KEY, counter)) == 6


@pytest.mark.parametrize(
    "algorithm",
    ["MD5", "SHA224", "SHA384", "SHA3-256", "SHA-1", "", "sha1 "],
    ids=["MD5", "SHA224", "SHA384", "SHA3-256", "SHA-1", "empty", "sha1-space"],
)
def test_hotp_refuses_unknown_algorithm(algorithm: str) -> None:
    with pytest.raises(InvalidInput):
        hotp(HOTP_KEY, 0, algorithm=cast(Algorithm, algorithm))


@pytest.mark.parametrize("period", [0, -1, -30], ids=lambda p: f"period={p}")
def test_time_step_refuses_non_positive_period(period: int) -> None:
    with pytest.raises(InvalidInput):
        time_step(59, period=period)


def test_time_step_refuses_time_before_t0() -> None:
    with pytest.raises(InvalidInput):
        time_step(-1)
    with pytest.raises(InvalidInput):
        time_step(99, t0=100)
    assert time_step(100, t0=100) == 0


@pytest.mark.parametrize("unix_time", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_time_step_non_finite_time_is_invalid_input(unix_time: float) -> None:
    """Every mfakit failure is an MFAError; a non-finite time must not escape as ValueError
    or OverflowError from int()."""
    with pytest.raises(InvalidInput):
        time_step(unix_time)
