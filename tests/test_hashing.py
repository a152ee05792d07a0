"""Tests for argon2id hashing of PINs and answers (SECURITY.md 21, 22)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import argon2
import pytest

from mfakit.exceptions import ConfigurationError, InvalidInput, InvalidType, MFAError
from mfakit.hazmat.hashing import MAX_SECRET_LENGTH, SecretHasher

SRC = Path(__file__).resolve().parents[1] / "src"
PHC = re.compile(
    r"\$argon2id\$v=19\$m=(?P<m>\d+),t=(?P<t>\d+),p=(?P<p>\d+)"
    r"\$(?P<salt>[A-Za-z0-9+/]+)\$(?P<hash>[A-Za-z0-9+/]+)"
)


@pytest.fixture(scope="module")
def hasher() -> SecretHasher:
    return SecretHasher.owasp_minimum()


@pytest.fixture(scope="module")
def stored(hasher: SecretHasher) -> str:
    return hasher.hash("2468")


def test_hash_and_verify(hasher: SecretHasher, stored: str) -> None:
    assert hasher.verify(stored, "2468") is True
    assert hasher.verify(stored, "2469") is False
    assert hasher.verify(stored, "2468 ") is False


def test_unicode_secret_round_trips(hasher: SecretHasher) -> None:
    encoded = hasher.hash("mother's maiden name: Ömer 🔑")
    assert hasher.verify(encoded, "mother's maiden name: Ömer 🔑")
    assert not hasher.verify(encoded, "mother's maiden name: Omer 🔑")


def test_phc_string_meets_owasp_floor(stored: str) -> None:
    match = PHC.fullmatch(stored)
    assert match is not None
    assert int(match["m"]) >= 19456
    assert int(match["t"]) >= 2
    assert int(match["p"]) >= 1
    assert (int(match["m"]), int(match["t"]), int(match["p"])) == (19456, 2, 1)
    assert "2468" not in stored


def test_default_parameters() -> None:
    default = SecretHasher()
    assert (default.time_cost, default.memory_cost, default.parallelism) == (3, 65536, 4)
    assert (default.hash_len, default.salt_len) == (32, 16)
    encoded = default.hash("1234")
    assert encoded.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert default.verify(encoded, "1234")


def test_unique_salts(hasher: SecretHasher) -> None:
    first, second = hasher.hash("same answer"), hasher.hash("same answer")
    assert first != second
    match_1, match_2 = PHC.fullmatch(first), PHC.fullmatch(second)
    assert match_1 is not None
    assert match_2 is not None
    assert match_1["salt"] != match_2["salt"]
    assert hasher.verify(first, "same answer")
    assert hasher.verify(second, "same answer")


def test_salt_and_hash_lengths_follow_parameters() -> None:
    custom = SecretHasher(time_cost=2, memory_cost=19456, parallelism=1, hash_len=48, salt_len=24)
    match = PHC.fullmatch(custom.hash("x"))
    assert match is not None
    assert len(match["salt"]) == 32  # 24 bytes in unpadded base64
    assert len(match["hash"]) == 64  # 48 bytes


# -- rehash ------------------------------------------------------------------------------


def test_needs_rehash_false_for_same_parameters(hasher: SecretHasher, stored: str) -> None:
    assert hasher.needs_rehash(stored) is False
    assert SecretHasher.owasp_minimum().needs_rehash(stored) is False


@pytest.mark.parametrize(
    "changed",
    [
        {"time_cost": 3},
        {"memory_cost": 19457},
        {"memory_cost": 65536},
        {"parallelism": 2},
        {"hash_len": 16},
        {"salt_len": 32},
    ],
)
def test_needs_rehash_true_when_parameters_change(stored: str, changed: dict[str, int]) -> None:
    params = {"time_cost": 2, "memory_cost": 19456, "parallelism": 1, **changed}
    assert SecretHasher(**params).needs_rehash(stored) is True


def test_rehash_cycle(hasher: SecretHasher, stored: str) -> None:
    stronger = SecretHasher(time_cost=3, memory_cost=19456, parallelism=1)
    assert stronger.verify(stored, "2468")  # old parameters still verify
    assert stronger.needs_rehash(stored)
    rehashed = stronger.hash("2468")
    assert not stronger.needs_rehash(rehashed)
    assert stronger.verify(rehashed, "2468")
    assert hasher.needs_rehash(rehashed)


def test_needs_rehash_true_for_other_algorithms(hasher: SecretHasher) -> None:
    argon2i = argon2.PasswordHasher(
        time_cost=2, memory_cost=19456, parallelism=1, type=argon2.Type.I
    ).hash("2468")
    assert hasher.needs_rehash(argon2i) is True
    assert hasher.needs_rehash("$2b$12$" + "a" * 53) is True
    assert hasher.needs_rehash("plaintext") is True


def test_needs_rehash_malformed_argon2id(hasher: SecretHasher) -> None:
    with pytest.raises(InvalidInput):
        hasher.needs_rehash("$argon2id$garbage")
    with pytest.raises(InvalidType):
        hasher.needs_rehash(b"$argon2id$")  # type: ignore[arg-type]


# -- malformed stored hashes ------------------------------------------------------------


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "2468",
        "$argon2id$",
        "$argon2id$garbage",
        "$argon2id$v=19$m=19456,t=2,p=1$!!!!$!!!!",
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$",
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaA\u00e9",
        "$2b$12$" + "a" * 53,
    ],
)
def test_verify_refuses_malformed_hash(hasher: SecretHasher, encoded: str) -> None:
    with pytest.raises(InvalidInput) as info:
        hasher.verify(encoded, "2468")
    assert "2468" not in str(info.value)
    if len(encoded) > 12:
        assert encoded not in str(info.value)


def test_verify_refuses_non_argon2id(hasher: SecretHasher) -> None:
    argon2i = argon2.PasswordHasher(
        time_cost=2, memory_cost=19456, parallelism=1, type=argon2.Type.I
    ).hash("2468")
    with pytest.raises(InvalidInput):
        hasher.verify(argon2i, "2468")


# -- parameter floor ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"memory_cost": 19455},
        {"memory_cost": 4096},
        {"time_cost": 1},
        {"time_cost": 0},
        {"parallelism": 0},
        {"parallelism": -1},
        {"salt_len": 15},
        {"salt_len": 8},
        {"hash_len": 8},
        {"memory_cost": 19456, "parallelism": 4096},  # argon2 needs m >= 8 * p
    ],
)
def test_floor_enforced(params: dict[str, int]) -> None:
    with pytest.raises(ConfigurationError):
        SecretHasher(**params)


@pytest.mark.parametrize(
    "params",
    [{"memory_cost": 19456.0}, {"time_cost": "3"}, {"parallelism": True}, {"salt_len": None}],
)
def test_parameter_types(params: dict[str, object]) -> None:
    with pytest.raises(InvalidType):
        SecretHasher(**params)  # type: ignore[arg-type]


def test_parameters_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        SecretHasher(3, 65536, 4)  # type: ignore[call-arg]


def test_owasp_minimum_is_the_floor() -> None:
    floor = SecretHasher.owasp_minimum()
    assert (floor.memory_cost, floor.time_cost, floor.parallelism) == (19456, 2, 1)
    assert floor.salt_len >= 16


# -- secret validation -------------------------------------------------------------------


def test_secret_validation(hasher: SecretHasher, stored: str) -> None:
    with pytest.raises(InvalidType):
        hasher.hash(b"2468")  # type: ignore[arg-type]
    with pytest.raises(InvalidType):
        hasher.hash(2468)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        hasher.hash("")
    too_long = "s" * (MAX_SECRET_LENGTH + 1)
    with pytest.raises(InvalidInput) as info:
        hasher.hash(too_long)
    assert "s" * 50 not in str(info.value)
    with pytest.raises(InvalidInput):
        hasher.verify(stored, too_long)
    with pytest.raises(InvalidType):
        hasher.verify(stored, None)  # type: ignore[arg-type]
    with pytest.raises(InvalidType):
        hasher.verify(stored.encode(), "2468")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        hasher.dummy_verify("")
    for error in (InvalidType, InvalidInput):
        assert issubclass(error, MFAError)


def test_longest_secret_accepted(hasher: SecretHasher) -> None:
    longest = "s" * MAX_SECRET_LENGTH
    assert hasher.verify(hasher.hash(longest), longest)


# -- equal work for unknown subjects -----------------------------------------------------


def test_dummy_verify_is_false_and_counts_like_verify(stored: str) -> None:
    hasher = SecretHasher.owasp_minimum()
    assert hasher.calls == 0
    assert hasher.verify(stored, "0000") is False
    assert hasher.calls == 1
    assert hasher.verify(stored, "2468") is True
    assert hasher.calls == 2
    assert hasher.dummy_verify("2468") is False
    assert hasher.calls == 3
    assert hasher.dummy_verify("0000") is False
    assert hasher.calls == 4
    hasher.hash("1357")
    assert hasher.calls == 5
    # Refused input costs no argon2 work and is not counted.
    with pytest.raises(InvalidInput):
        hasher.verify(stored, "")
    assert hasher.calls == 5


def test_dummy_verify_does_real_argon2_work_with_same_parameters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[str, str]] = []
    original = argon2.PasswordHasher.verify

    def spy(self: argon2.PasswordHasher, hash: str | bytes, password: str | bytes) -> bool:
        assert isinstance(hash, str)
        assert isinstance(password, str)
        seen.append((hash, password))
        return original(self, hash, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", spy)
    hasher = SecretHasher.owasp_minimum()
    assert hasher.dummy_verify("2468") is False
    assert hasher.dummy_verify("2468") is False
    assert len(seen) == 2
    (dummy, password), (again, _) = seen
    assert password == "2468"
    assert dummy == again  # created once, cached
    assert dummy.startswith("$argon2id$")
    assert hasher.needs_rehash(dummy) is False  # exactly this hasher's parameters
    assert SecretHasher().needs_rehash(dummy) is True
    # A different instance has its own throw-away hash.
    other = SecretHasher.owasp_minimum()
    other.dummy_verify("2468")
    assert seen[-1][0] != dummy


def test_wrong_secret_is_not_rejected_before_hashing(
    stored: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    original = argon2.PasswordHasher.verify

    def spy(self: argon2.PasswordHasher, hash: str | bytes, password: str | bytes) -> bool:
        calls.append("verify")
        return original(self, hash, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", spy)
    hasher = SecretHasher.owasp_minimum()
    assert hasher.verify(stored, "9") is False
    assert hasher.verify(stored, "2468") is True
    assert calls == ["verify", "verify"]


def test_calls_counter_is_thread_safe(stored: str) -> None:
    hasher = SecretHasher.owasp_minimum()
    results: list[bool] = []
    lock = threading.Lock()

    def work() -> None:
        outcome = [hasher.verify(stored, "2468"), hasher.dummy_verify("2468")]
        with lock:
            results.extend(outcome)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert hasher.calls == 8
    assert sorted(results) == [False] * 4 + [True] * 4


# -- repr and import isolation -----------------------------------------------------------


def test_repr_shows_parameters_only(hasher: SecretHasher) -> None:
    hasher.dummy_verify("2468")
    assert repr(hasher) == (
        "SecretHasher(time_cost=2, memory_cost=19456, parallelism=1, hash_len=32, salt_len=16)"
    )
    assert "$argon2" not in repr(hasher)


def run_python(code: str) -> str:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_importing_hashing_does_not_import_argon2() -> None:
    code = "import mfakit.hazmat.hashing, sys; print('argon2' in sys.modules)"
    assert run_python(code) == "False"


def test_import_probe_detects_argon2_once_used() -> None:
    # Proves the probe above can see argon2 being imported.
    code = (
        "import sys; from mfakit.hazmat.hashing import SecretHasher; "
        "h = SecretHasher.owasp_minimum(); h.dummy_verify('x'); "
        "print('argon2' in sys.modules)"
    )
    assert run_python(code) == "True"
