"""TOTP verification through the ``MFA`` facade, side by side with pyotp.

Run from the repository root (the project's ``addopts`` disable benchmarks, hence
``--benchmark-enable``; without an editable install, prefix ``PYTHONPATH=src``)::

    mkdir -p build
    .venv/bin/python -m pytest benchmarks --benchmark-enable --benchmark-json=build/bench.json
    .venv/bin/python benchmarks/compare.py build/bench.json

Without ``--benchmark-enable`` every benchmark runs its target once, as a smoke test.

Every benchmark uses ``benchmark.pedantic`` with the same shape: an untimed ``setup`` builds
the arguments of one round (a fresh challenge and a fresh code, so replay protection never
refuses a round), and the timed target is one call of the library plus appending its answer
to a list, so each round's answer is checked after the run. pyotp gets the same wrapper, the
same number of rounds and the same kind of secret (20 random bytes).

What each round of ``test_mfakit_verify_memorystore`` pays for, and pyotp does not: identifier
and code validation, NFKC normalisation of the code, reading the challenge and the
credential from the store, AES-256-GCM decryption of the seed, charging the subject's lockout
and the challenge's attempt counter *before* the comparison, a conditional write of the
accepted time step (replay protection), resetting the lockout, deleting the used challenge
and returning a ``Verification``.
"""

from __future__ import annotations

import base64
import dataclasses
import secrets
from collections.abc import Callable
from typing import Final

import pyotp
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from mfakit import MFA, Challenge, InvalidCode, Keyring, Lockout, Subject, Verification
from mfakit.factors import TOTP
from mfakit.testing import FakeClock, MemoryStore, totp_now

pytestmark = pytest.mark.benchmark(group="totp-verify")

#: Timed rounds per benchmark, and untimed warm-up rounds before them.
ROUNDS: Final = 10_000
WARMUP_ROUNDS: Final = 1_000
PERIOD: Final = 30

Args = tuple[tuple[str, ...], dict[str, object]]


@dataclasses.dataclass
class Bench:
    """An ``MFA`` over a ``MemoryStore`` with one subject holding one confirmed TOTP app."""

    mfa: MFA
    store: MemoryStore
    clock: FakeClock
    subject: Subject
    secret: str
    credential_id: str


def make_bench(lockout: Lockout | None = None) -> Bench:
    clock = FakeClock()
    store = MemoryStore()
    mfa = MFA(
        store=store,
        keyring=Keyring.ephemeral(),
        factors=[TOTP(issuer="Bench")],
        clock=clock,
        lockout=lockout,
    )
    subject = Subject(id="bench-user", username="bench")
    enrollment = mfa.enroll(subject, TOTP.setup(label="Bench phone"))
    credential = mfa.confirm(subject, enrollment.id, totp_now(enrollment.secret, clock.now()))
    assert credential.active
    return Bench(mfa, store, clock, subject, enrollment.secret, credential.id)


def run_pedantic(
    benchmark: BenchmarkFixture, target: Callable[..., None], setup: Callable[[], Args]
) -> None:
    """The one shape every benchmark here uses: fresh untimed arguments, one timed call."""
    benchmark.pedantic(  # type: ignore[no-untyped-call]  # pytest-benchmark is unannotated
        target, setup=setup, rounds=ROUNDS, warmup_rounds=WARMUP_ROUNDS, iterations=1
    )


def expected_calls(benchmark: BenchmarkFixture) -> int:
    """How many times pedantic calls the target: every round, or once when disabled."""
    return ROUNDS + WARMUP_ROUNDS if benchmark.enabled else 1


def current_step(bench: Bench) -> int:
    return int(bench.clock.now().timestamp()) // PERIOD


def test_mfakit_verify_memorystore(benchmark: BenchmarkFixture) -> None:
    bench = make_bench()
    mfa, clock, subject = bench.mfa, bench.clock, bench.subject
    results: list[Verification] = []

    def setup() -> Args:
        clock.advance(PERIOD)  # a new time step, so the fresh code is not a replay
        challenge = mfa.challenge(subject, "totp")
        return (challenge.id, totp_now(bench.secret, clock.now())), {}

    def target(challenge_id: str, code: str) -> None:
        results.append(mfa.verify(subject, challenge_id, code))

    run_pedantic(benchmark, target, setup)

    calls = expected_calls(benchmark)
    assert len(results) == calls
    assert all(
        r.credential_id == bench.credential_id and r.subject_id == subject.id for r in results
    )
    assert len({r.challenge_id for r in results}) == calls
    (credential,) = mfa.credentials(subject)
    # confirm wrote version 2; every accepted code advanced the counter with one more write
    assert credential.version == 2 + calls
    assert credential.counter == current_step(bench)
    assert mfa.lock_state(subject).failures == 0
    assert bench.store.dump()["challenges"] == []  # every used challenge was deleted


def test_pyotp_verify(benchmark: BenchmarkFixture) -> None:
    secret = base64.b32encode(secrets.token_bytes(20)).decode("ascii")
    results: list[bool] = []

    def setup() -> Args:
        # pyotp reads the wall clock itself: a code for now (still inside its window if a
        # period boundary passes before the timed call).
        return (pyotp.TOTP(secret).now(),), {}

    def target(code: str) -> None:
        results.append(pyotp.TOTP(secret).verify(code, valid_window=1))

    run_pedantic(benchmark, target, setup)

    assert len(results) == expected_calls(benchmark)
    assert all(results)


def test_pyotp_verify_prebuilt(benchmark: BenchmarkFixture) -> None:
    # For reference only (compare.py's ratio uses test_pyotp_verify): a pyotp.TOTP built
    # once and reused, so its base32 decoding in the constructor is not timed. Each
    # verify() still decodes the secret once per code it computes.
    totp = pyotp.TOTP(base64.b32encode(secrets.token_bytes(20)).decode("ascii"))
    results: list[bool] = []

    def setup() -> Args:
        return (totp.now(),), {}

    def target(code: str) -> None:
        results.append(totp.verify(code, valid_window=1))

    run_pedantic(benchmark, target, setup)

    assert len(results) == expected_calls(benchmark)
    assert all(results)


def _wrong_code(bench: Bench) -> str:
    """A code matching no step of the drift window at the clock's time."""
    now = bench.clock.now()
    window = {totp_now(bench.secret, now, offset=offset) for offset in (-1, 0, 1)}
    candidate = int(totp_now(bench.secret, now))
    while f"{candidate:06d}" in window:
        candidate = (candidate + 1) % 1_000_000
    return f"{candidate:06d}"


def test_mfakit_verify_wrong_code(benchmark: BenchmarkFixture) -> None:
    # Suspension after 100 failures; setup unlocks long before that, so no round ever
    # meets LockedOut (which would propagate and fail the benchmark).
    bench = make_bench(Lockout(max_failures=100, mode="suspend"))
    mfa, clock, subject = bench.mfa, bench.clock, bench.subject
    # Exception classes, not instances: keeping 11 000 tracebacks alive (and their frames)
    # makes the garbage collector's passes, and so the timings, grow during the run.
    failures: list[type[InvalidCode]] = []
    unlocks = 0

    def setup() -> Args:
        nonlocal unlocks
        clock.advance(PERIOD)
        if mfa.lock_state(subject).failures >= 50:
            mfa.unlock(subject, actor="bench")
            unlocks += 1
            # Failed challenges stay open until they expire (5 min = 10 rounds): drop the
            # expired ones so the store, and the garbage collector's work, stay small.
            mfa.purge_expired()
        challenge = mfa.challenge(subject, "totp")
        return (challenge.id, _wrong_code(bench)), {}

    def target(challenge_id: str, code: str) -> None:
        try:
            mfa.verify(subject, challenge_id, code)
        except InvalidCode as exc:
            failures.append(type(exc))

    run_pedantic(benchmark, target, setup)

    calls = expected_calls(benchmark)
    assert len(failures) == calls
    state = mfa.lock_state(subject)
    assert not state.suspended
    assert state.failures == calls - 50 * unlocks  # every attempt was charged
    (credential,) = mfa.credentials(subject)
    assert credential.version == 2  # nothing accepted after the confirmation


def test_mfakit_challenge(benchmark: BenchmarkFixture) -> None:
    bench = make_bench()
    mfa, subject = bench.mfa, bench.subject
    results: list[Challenge] = []

    def setup() -> Args:
        return ("totp",), {}

    def target(factor: str) -> None:
        results.append(mfa.challenge(subject, factor))

    run_pedantic(benchmark, target, setup)

    calls = expected_calls(benchmark)
    assert len(results) == calls
    assert len({c.id for c in results}) == calls
    assert all(c.subject_id == subject.id and c.attempts == 0 for c in results)
