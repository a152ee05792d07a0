"""Interoperability of :func:`mfakit.hazmat.otp.totp` with OATH Toolkit's ``oathtool``.

Several hundred random, reproducible cases (``random.Random(SEED)``) of secret length,
Unix time (including 32-bit and period edges), algorithm, digits and period. For each case
``oathtool`` is run three times, all in a thread pool before the tests look at the results:

1. generate ``WINDOW + 1`` consecutive codes (``--window``), which must equal mfakit's codes
   for the same time steps;
2. validate mfakit's code (``oathtool ... KEY OTP``), which oathtool must accept;
3. validate mfakit's code with one digit changed, which oathtool must refuse.

Half of the cases pass the key in hex, the other half in base32 produced by
:func:`mfakit.hazmat.otp.encode_secret` (``--base32``), so our encoding is checked too.

Without ``oathtool`` the module is skipped, except when ``CI`` is set to a true value: the CI
image installs it, so its absence there is a failure.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final

import pytest

from mfakit.exceptions import MalformedCode
from mfakit.hazmat.compare import constant_time_equal, normalize_code
from mfakit.hazmat.otp import Algorithm, encode_secret, totp

SEED: Final = 0x6F617468  # "oath"; change it to explore, keep it to reproduce.
CASE_COUNT: Final = 512
#: Extra codes oathtool prints after the current one (``--window``).
WINDOW: Final = 3

ALGORITHMS: Final[tuple[Algorithm, ...]] = ("SHA1", "SHA256", "SHA512")
DIGITS: Final = (6, 7, 8)
PERIODS: Final = (30, 60)
MAX_TIME: Final = 2**35

#: Times every run covers: the epoch, period boundaries, signed/unsigned 32-bit limits,
#: RFC 6238 vector times and the top of the range.
EDGE_TIMES: Final = (
    0,
    1,
    29,
    30,
    31,
    59,
    60,
    61,
    119,
    120,
    1111111109,
    1234567890,
    2**31 - 1,
    2**31,
    2**32 - 1,
    2**32,
    2**33,
    20000000000,
    2**35 - 1,
    2**35,
)

CI: Final = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}
OATHTOOL: Final = shutil.which("oathtool")


@dataclass(frozen=True)
class Case:
    index: int
    secret: bytes
    unix_time: int
    algorithm: Algorithm
    digits: int
    period: int
    base32: bool

    @property
    def id(self) -> str:
        key = "b32" if self.base32 else "hex"
        return (
            f"{self.index:03d}-{self.algorithm}-d{self.digits}-p{self.period}"
            f"-len{len(self.secret)}-{key}-t{self.unix_time}"
        )

    @property
    def key_argument(self) -> str:
        return encode_secret(self.secret) if self.base32 else self.secret.hex()

    def mfakit_code(self, step_offset: int = 0) -> str:
        return totp(
            self.secret,
            self.unix_time + step_offset * self.period,
            period=self.period,
            digits=self.digits,
            algorithm=self.algorithm,
        )


def _random_time(rng: random.Random, period: int) -> int:
    kind = rng.randrange(4)
    if kind == 0:
        return rng.choice(EDGE_TIMES)
    if kind == 1:
        # Just before, at, or just after a period boundary.
        boundary = rng.randrange(MAX_TIME // period) * period
        return max(0, boundary + rng.choice((-1, 0, 1, period - 1)))
    return rng.randrange(MAX_TIME + 1)


def _make_cases() -> list[Case]:
    rng = random.Random(SEED)
    cases: list[Case] = []
    for index in range(CASE_COUNT):
        period = rng.choice(PERIODS)
        # The first cases walk the edge list with varied parameters.
        unix_time = EDGE_TIMES[index] if index < len(EDGE_TIMES) else _random_time(rng, period)
        cases.append(
            Case(
                index=index,
                secret=rng.randbytes(rng.randint(16, 64)),
                unix_time=unix_time,
                algorithm=ALGORITHMS[index % len(ALGORITHMS)]
                if index < 3 * len(ALGORITHMS)
                else rng.choice(ALGORITHMS),
                digits=rng.choice(DIGITS),
                period=period,
                base32=index % 2 == 1,
            )
        )
    return cases


CASES: Final = _make_cases()
CASE_PARAMS: Final = [pytest.param(case, id=case.id) for case in CASES]


def _alter_one_digit(code: str, rng: random.Random) -> str:
    position = rng.randrange(len(code))
    digit = (int(code[position]) + rng.randint(1, 9)) % 10
    return f"{code[:position]}{digit}{code[position + 1 :]}"


@dataclass(frozen=True)
class OathtoolResult:
    generated: tuple[str, ...]
    accept_returncode: int
    accept_stdout: str
    reject_returncode: int
    wrong_code: str


def _base_command(oathtool: str, case: Case) -> list[str]:
    command = [
        oathtool,
        f"--totp={case.algorithm}",
        f"--digits={case.digits}",
        f"--time-step-size={case.period}s",
        f"--now=@{case.unix_time}",
    ]
    if case.base32:
        command.append("--base32")
    return command


def _run(command: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=30, check=False)


def _run_case(oathtool: str, case: Case, env: Mapping[str, str]) -> OathtoolResult:
    base = _base_command(oathtool, case)
    generate = _run([*base, f"--window={WINDOW}", case.key_argument], env)
    assert generate.returncode == 0, f"oathtool failed for {case.id}: {generate.stderr}"
    wrong = _alter_one_digit(case.mfakit_code(), random.Random(f"{SEED}-{case.index}"))
    accept = _run([*base, case.key_argument, case.mfakit_code()], env)
    reject = _run([*base, case.key_argument, wrong], env)
    return OathtoolResult(
        generated=tuple(generate.stdout.split()),
        accept_returncode=accept.returncode,
        accept_stdout=accept.stdout.strip(),
        reject_returncode=reject.returncode,
        wrong_code=wrong,
    )


@pytest.fixture(scope="module")
def oathtool() -> str:
    if OATHTOOL is None:
        message = (
            "oathtool (OATH Toolkit, Debian/Ubuntu package 'oathtool') is not on PATH; "
            "it is needed for the TOTP interoperability tests"
        )
        if CI:
            pytest.fail(f"{message}, and CI is set: the CI image must install it")
        pytest.skip(message)
    return OATHTOOL


@pytest.fixture(scope="module")
def oathtool_results(oathtool: str) -> dict[int, OathtoolResult]:
    env = {**os.environ, "LC_ALL": "C", "TZ": "UTC"}
    workers = min(32, 4 * (os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda case: _run_case(oathtool, case, env), CASES))
    return {case.index: result for case, result in zip(CASES, results, strict=True)}


def test_case_mix() -> None:
    """The generated cases cover what the module docstring promises."""
    assert len(CASES) >= 500
    assert sum(case.base32 for case in CASES) == len(CASES) // 2
    assert {case.algorithm for case in CASES} == set(ALGORITHMS)
    assert {case.digits for case in CASES} == set(DIGITS)
    assert {case.period for case in CASES} == set(PERIODS)
    assert {len(case.secret) for case in CASES} >= {16, 64}
    assert all(16 <= len(case.secret) <= 64 for case in CASES)
    assert all(0 <= case.unix_time <= MAX_TIME for case in CASES)
    assert set(EDGE_TIMES) <= {case.unix_time for case in CASES}
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_mfakit_matches_oathtool(case: Case, oathtool_results: dict[int, OathtoolResult]) -> None:
    result = oathtool_results[case.index]
    expected = tuple(case.mfakit_code(k) for k in range(WINDOW + 1))
    assert result.generated == expected


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_oathtool_code_accepted_by_compare(
    case: Case, oathtool_results: dict[int, OathtoolResult]
) -> None:
    """An oathtool code, as a person might type it, passes normalize + constant_time_equal;
    the same code with one digit changed does not."""
    ours = case.mfakit_code()
    theirs = oathtool_results[case.index].generated[0]
    rng = random.Random(f"typed-{SEED}-{case.index}")
    split = rng.randrange(1, case.digits)
    typed = rng.choice(
        (theirs, f"{theirs[:split]} {theirs[split:]}", f" {theirs[:split]}-{theirs[split:]} ")
    )
    normalised = normalize_code(typed, digits=case.digits)
    assert normalised == theirs
    assert constant_time_equal(normalised, ours)

    wrong = normalize_code(_alter_one_digit(theirs, rng), digits=case.digits)
    assert wrong != theirs
    assert not constant_time_equal(wrong, ours)
    # A code of another length is refused outright, not compared.
    with pytest.raises(MalformedCode):
        normalize_code(theirs[:-1], digits=case.digits)


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_oathtool_validates_mfakit_code(
    case: Case, oathtool_results: dict[int, OathtoolResult]
) -> None:
    result = oathtool_results[case.index]
    assert result.accept_returncode == 0
    assert result.accept_stdout == "0"  # found at window offset 0
    assert result.wrong_code != case.mfakit_code()
    assert result.reject_returncode != 0
