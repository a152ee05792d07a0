"""Brute-force limits: the lockout maths in :mod:`mfakit._throttle` and the facade's use of it.

SECURITY.md 12-17: failures are counted per subject across challenges and sign-ins, the limit
never exceeds 100 (NIST SP 800-63B 5.2.2), the attempt is charged before the comparison, locks
grow (30 s doubling to 1 h) or suspend until an administrator unlocks, and while locked a right
and a wrong code get identical answers with nothing charged and nothing reset.

Time only moves through :class:`FakeClock`; nothing sleeps.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Final

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mfakit import MFA, EventType, Keyring, Lockout, LockState, Subject, _throttle
from mfakit._throttle import NIST_MAX_FAILURES, charge, check, is_locked, reset, triggered
from mfakit.exceptions import (
    LOCKED_MESSAGE,
    ConfigurationError,
    InvalidCode,
    LockedOut,
    MalformedCode,
    ReplayedCode,
)
from mfakit.factors import TOTP
from mfakit.testing import FakeClock, ListSink, MemoryStore, totp_now

T0: Final = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
SECOND: Final = dt.timedelta(seconds=1)
HOUR: Final = dt.timedelta(hours=1)
PROPERTY: Final = settings(
    database=None, deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow]
)
ALICE: Final = Subject(id="alice", username="alice@example.com")
BOB: Final = Subject(id="bob")


# ------------------------------------------------------------------------------------------
# helpers (module-level, so this file does not depend on tests/conftest.py)
# ------------------------------------------------------------------------------------------
@dataclasses.dataclass
class LockRig:
    """One MFA instance with everything a test needs to inspect."""

    mfa: MFA
    clock: FakeClock
    store: MemoryStore
    events: ListSink


def make_lock_rig(lockout: Lockout | None = None, *, factor: TOTP | None = None) -> LockRig:
    clock = FakeClock()
    store = MemoryStore()
    events = ListSink()
    mfa = MFA(
        store=store,
        keyring=Keyring.ephemeral(),
        factors=[factor if factor is not None else TOTP(issuer="ACME")],
        clock=clock,
        events=events,
        lockout=lockout,
    )
    return LockRig(mfa, clock, store, events)


def enroll_active(rig: LockRig, subject: Subject) -> str:
    """Enrol and confirm a TOTP credential; return its secret. Moves to the next time step."""
    enrollment = rig.mfa.enroll(subject, TOTP.setup(label="Phone"))
    rig.mfa.confirm(subject, enrollment.id, totp_now(enrollment.secret, rig.clock.now()))
    rig.clock.advance(30)  # the confirmed step is used; the next one is fresh
    return enrollment.secret


def right_code(rig: LockRig, secret: str) -> str:
    return totp_now(secret, rig.clock.now())


def wrong_code(rig: LockRig, secret: str) -> str:
    """A well-formed code that matches no step near now (not even the drift window)."""
    near = {totp_now(secret, rig.clock.now(), offset=k) for k in range(-3, 4)}
    candidate = 0
    while f"{candidate:06d}" in near:
        candidate += 1
    return f"{candidate:06d}"


def fail_once(rig: LockRig, subject: Subject, secret: str) -> InvalidCode:
    """One wrong code on a fresh challenge; returns the InvalidCode raised."""
    challenge = rig.mfa.challenge(subject, "totp")
    with pytest.raises(InvalidCode) as info:
        rig.mfa.verify(subject, challenge.id, wrong_code(rig, secret))
    return info.value


def locked_events(rig: LockRig) -> list[str | None]:
    return [e.reason for e in rig.events.of_type(EventType.LOCKED)]


def fresh(subject_id: str = "alice") -> LockState:
    return LockState(subject_id)


# ------------------------------------------------------------------------------------------
# Lockout configuration
# ------------------------------------------------------------------------------------------
BAD_LOCKOUTS: Final[list[Any]] = [
    pytest.param({"max_failures": 0}, id="max_failures=0"),
    pytest.param({"max_failures": -1}, id="max_failures=-1"),
    pytest.param({"max_failures": 101}, id="max_failures=101-above-NIST"),
    pytest.param({"max_failures": 10**9}, id="max_failures=huge"),
    pytest.param({"max_failures": True}, id="max_failures=True"),
    pytest.param({"max_failures": False}, id="max_failures=False"),
    pytest.param({"max_failures": "5"}, id="max_failures=str"),
    pytest.param({"max_failures": 5.0}, id="max_failures=float"),
    pytest.param({"max_failures": None}, id="max_failures=None"),
    pytest.param({"hard_limit": 0}, id="hard_limit=0"),
    pytest.param({"hard_limit": 101}, id="hard_limit=101-above-NIST"),
    pytest.param({"hard_limit": True}, id="hard_limit=True"),
    pytest.param({"hard_limit": "100"}, id="hard_limit=str"),
    pytest.param({"max_failures": 10, "hard_limit": 9}, id="hard_limit<max_failures"),
    pytest.param({"max_failures": 100, "hard_limit": 99}, id="hard_limit<max_failures-at-cap"),
    pytest.param({"mode": "bogus"}, id="mode=bogus"),
    pytest.param({"mode": ""}, id="mode=empty"),
    pytest.param({"mode": "BACKOFF"}, id="mode=upper-case"),
    pytest.param({"mode": None}, id="mode=None"),
    pytest.param({"backoff_initial": dt.timedelta(0)}, id="backoff_initial=0"),
    pytest.param({"backoff_initial": -SECOND}, id="backoff_initial<0"),
    pytest.param({"backoff_max": dt.timedelta(0)}, id="backoff_max=0"),
    pytest.param({"backoff_max": -HOUR}, id="backoff_max<0"),
    pytest.param({"backoff_initial": 2 * HOUR}, id="backoff_initial>backoff_max"),
]


@pytest.mark.parametrize("kwargs", BAD_LOCKOUTS)
def test_lockout_refuses_bad_configuration(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        Lockout(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"max_failures": 1}, id="max_failures=1"),
        pytest.param({"max_failures": 100}, id="max_failures=100"),
        pytest.param({"max_failures": 7, "hard_limit": 7}, id="hard_limit=max_failures"),
        pytest.param({"backoff_initial": HOUR, "backoff_max": HOUR}, id="initial=max"),
        pytest.param({"mode": "suspend"}, id="suspend"),
    ],
)
def test_lockout_accepts_boundary_configuration(kwargs: dict[str, Any]) -> None:
    policy = Lockout(**kwargs)
    for name, value in kwargs.items():
        assert getattr(policy, name) == value


def test_lockout_defaults() -> None:
    policy = Lockout()
    assert (policy.max_failures, policy.mode, policy.hard_limit) == (5, "backoff", 100)
    assert (policy.backoff_initial, policy.backoff_max) == (30 * SECOND, HOUR)


def test_presets_nist_and_ism() -> None:
    assert NIST_MAX_FAILURES == 100
    nist = Lockout.nist()
    assert (nist.max_failures, nist.mode) == (100, "suspend")
    ism = Lockout.ism()
    assert (ism.max_failures, ism.mode) == (5, "suspend")


def test_lockout_refuses_non_timedelta_durations() -> None:
    with pytest.raises(ConfigurationError):
        Lockout(backoff_initial=30)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------
# lock_duration
# ------------------------------------------------------------------------------------------
def test_lock_duration_doubles_from_30s_and_caps_at_one_hour() -> None:
    policy = Lockout()
    seconds = [policy.lock_duration(n).total_seconds() for n in range(10)]
    assert seconds == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]


@pytest.mark.parametrize("lockouts", [31, 32, 33, 64, 1000, 10**6, 10**18])
def test_lock_duration_never_overflows_for_default_policy(lockouts: int) -> None:
    assert Lockout().lock_duration(lockouts) == HOUR


def test_lock_duration_reaches_the_cap_exactly_once_past_it() -> None:
    policy = Lockout(backoff_initial=SECOND, backoff_max=HOUR)
    assert policy.lock_duration(11) == 2048 * SECOND
    assert policy.lock_duration(12) == HOUR  # 4096 s capped


def test_lock_duration_never_overflows_for_long_initial_backoff() -> None:
    policy = Lockout(backoff_initial=6 * HOUR, backoff_max=dt.timedelta(days=1))
    assert policy.lock_duration(40) == dt.timedelta(days=1)


def test_charge_survives_many_long_lockouts() -> None:
    policy = Lockout(max_failures=1, backoff_initial=6 * HOUR, backoff_max=dt.timedelta(days=1))
    state, now = fresh(), T0
    for _ in range(40):
        state = charge(state, policy, now)
        if state.locked_until is not None:
            now = max(now, state.locked_until)
    assert state.locked_until is not None


# ------------------------------------------------------------------------------------------
# charge / check / is_locked / reset / triggered
# ------------------------------------------------------------------------------------------
def test_charge_counts_and_versions() -> None:
    policy = Lockout(max_failures=5)
    state = fresh()
    for n in range(1, 5):
        state = charge(state, policy, T0)
        assert (state.failures, state.version) == (n, n)
        assert state.locked_until is None
        assert not state.suspended
        assert not triggered(state, policy)
    assert state.subject_id == "alice"


def test_charge_locks_every_max_failures_th_failure_with_growing_duration() -> None:
    policy = Lockout(max_failures=3, mode="backoff")
    state, now = fresh(), T0
    locks: list[tuple[int, float, int]] = []
    for _ in range(12):
        state = charge(state, policy, now)
        if triggered(state, policy):
            assert state.locked_until is not None
            locks.append(
                (state.failures, (state.locked_until - now).total_seconds(), state.lockouts)
            )
            now = state.locked_until  # unlocked exactly at the boundary
        else:
            now += SECOND
    assert locks == [(3, 30, 1), (6, 60, 2), (9, 120, 3), (12, 240, 4)]
    assert not state.suspended


def test_charge_suspends_at_hard_limit_even_between_lock_points() -> None:
    policy = Lockout(max_failures=3, hard_limit=7, mode="backoff")
    state, now = fresh(), T0
    for _ in range(7):
        assert not state.suspended
        state = charge(state, policy, now)
        now = max(now, state.locked_until or now) + SECOND
    assert state.failures == 7
    assert state.suspended
    assert triggered(state, policy)
    with pytest.raises(LockedOut) as info:
        charge(state, policy, now + dt.timedelta(days=365))
    assert info.value.suspended
    assert info.value.retry_at is None


def test_charge_in_suspend_mode_suspends_at_max_failures() -> None:
    policy = Lockout(max_failures=4, mode="suspend")
    state = fresh()
    for _ in range(3):
        state = charge(state, policy, T0)
        assert not state.suspended
    state = charge(state, policy, T0)
    assert state.suspended
    assert state.locked_until is None
    assert state.lockouts == 0
    assert triggered(state, policy)


def test_charge_refuses_while_locked_and_returns_nothing_new() -> None:
    policy = Lockout(max_failures=1)
    state = charge(fresh(), policy, T0)
    assert state.locked_until == T0 + 30 * SECOND
    with pytest.raises(LockedOut) as info:
        charge(state, policy, T0 + 29 * SECOND)
    assert info.value.retry_at == T0 + 30 * SECOND
    assert not info.value.suspended
    assert info.value.public_message == LOCKED_MESSAGE


def test_lock_boundary_is_exclusive() -> None:
    """Locked while now < locked_until; unlocked at exactly locked_until."""
    until = T0 + 30 * SECOND
    state = LockState("alice", failures=5, locked_until=until, lockouts=1, version=5)
    just_before = until - dt.timedelta(microseconds=1)
    assert is_locked(state, just_before)
    with pytest.raises(LockedOut):
        check(state, just_before)
    assert not is_locked(state, until)
    check(state, until)  # does not raise
    assert not is_locked(state, until + SECOND)
    charged = charge(state, Lockout(max_failures=5), until)
    assert (charged.failures, charged.version) == (6, 6)


def test_suspended_state_is_locked_forever() -> None:
    state = LockState("alice", failures=100, suspended=True, version=100)
    assert is_locked(state, T0 + dt.timedelta(days=10_000))
    with pytest.raises(LockedOut) as info:
        check(state, T0)
    assert info.value.suspended


def test_reset_clears_everything_but_subject_and_bumps_version() -> None:
    state = LockState(
        "alice", failures=42, locked_until=T0 + HOUR, suspended=True, lockouts=7, version=9
    )
    assert reset(state) == LockState("alice", version=10)


@PROPERTY
@given(
    max_failures=st.integers(1, 100),
    extra=st.integers(0, 99),
    mode=st.sampled_from(["backoff", "suspend"]),
    initial_seconds=st.integers(1, 3600),
    cap_factor=st.integers(1, 24),
)
def test_no_policy_allows_more_than_100_failures(
    max_failures: int, extra: int, mode: str, initial_seconds: int, cap_factor: int
) -> None:
    """Whatever the valid policy, the charges accepted before suspension are bounded."""
    hard_limit = min(max_failures + extra, NIST_MAX_FAILURES)
    initial = initial_seconds * SECOND
    policy = Lockout(
        max_failures=max_failures,
        hard_limit=hard_limit,
        mode=mode,  # type: ignore[arg-type]
        backoff_initial=initial,
        backoff_max=initial * cap_factor,
    )
    state, now, accepted = fresh(), T0, 0
    while not state.suspended:
        state = charge(state, policy, now)
        accepted += 1
        assert accepted <= NIST_MAX_FAILURES
        if state.locked_until is not None:
            assert state.locked_until - now <= policy.backoff_max or state.locked_until <= now
            now = max(now, state.locked_until)
    assert accepted == (max_failures if mode == "suspend" else hard_limit)
    assert state.failures == accepted
    assert state.version == accepted


@PROPERTY
@given(
    failures=st.integers(0, 100),
    offset=st.integers(-(10**6), 10**6),
    suspended=st.booleans(),
    has_lock=st.booleans(),
)
def test_is_locked_agrees_with_check(
    failures: int, offset: int, suspended: bool, has_lock: bool
) -> None:
    state = LockState(
        "alice",
        failures=failures,
        locked_until=T0 if has_lock else None,
        suspended=suspended,
    )
    now = T0 + dt.timedelta(microseconds=offset)
    try:
        check(state, now)
    except LockedOut:
        raised = True
    else:
        raised = False
    assert raised == is_locked(state, now)
    assert raised == (suspended or (has_lock and offset < 0))


# ------------------------------------------------------------------------------------------
# facade
# ------------------------------------------------------------------------------------------
def test_backoff_lock_refuses_right_and_wrong_codes_identically() -> None:
    """SECURITY.md 16: while locked, a right code is indistinguishable from a wrong one."""
    rig = make_lock_rig(Lockout(max_failures=3, mode="backoff"))
    secret = enroll_active(rig, ALICE)
    challenge = rig.mfa.challenge(ALICE, "totp")
    for n in (1, 2):
        with pytest.raises(InvalidCode):
            rig.mfa.verify(ALICE, challenge.id, wrong_code(rig, secret))
        assert rig.mfa.lock_state(ALICE).failures == n
        assert locked_events(rig) == []
    with pytest.raises(InvalidCode):  # the third failure itself still answers InvalidCode
        rig.mfa.verify(ALICE, challenge.id, wrong_code(rig, secret))
    locked_at = rig.clock.now()
    [event] = rig.events.of_type(EventType.LOCKED)
    assert event.reason == "temporary"
    assert event.subject_id == "alice"
    assert event.detail["failures"] == 3
    assert event.detail["locked_until"] == (locked_at + 30 * SECOND).isoformat()

    state = rig.mfa.lock_state(ALICE)
    assert (state.failures, state.locked_until, state.lockouts) == (3, locked_at + 30 * SECOND, 1)
    dump = rig.store.dump()

    rig.clock.advance(29)
    with pytest.raises(LockedOut) as right:
        rig.mfa.verify(ALICE, challenge.id, right_code(rig, secret))
    with pytest.raises(LockedOut) as wrong:
        rig.mfa.verify(ALICE, challenge.id, wrong_code(rig, secret))
    assert type(right.value) is type(wrong.value) is LockedOut
    assert right.value.public_message == wrong.value.public_message == LOCKED_MESSAGE
    assert str(right.value) == str(wrong.value)
    assert right.value.retry_at == wrong.value.retry_at == locked_at + 30 * SECOND
    assert right.value.suspended is wrong.value.suspended is False
    # nothing charged, nothing reset: lock state, challenge attempts and credential unchanged
    assert rig.mfa.lock_state(ALICE) == state
    assert rig.store.dump() == dump

    rig.clock.advance(1)  # exactly locked_until: unlocked
    proof = rig.mfa.verify(ALICE, challenge.id, right_code(rig, secret))
    assert proof.subject_id == "alice"
    after = rig.mfa.lock_state(ALICE)
    assert (after.failures, after.locked_until, after.suspended) == (0, None, False)
    # The charge of this attempt and its reset are one unit of store work: one write.
    assert after.version == state.version + 1


def test_next_lock_without_success_lasts_twice_as_long() -> None:
    rig = make_lock_rig(Lockout(max_failures=3, mode="backoff"))
    secret = enroll_active(rig, ALICE)
    for expected in (30, 60, 120):
        for _ in range(3):
            fail_once(rig, ALICE, secret)
        with pytest.raises(LockedOut) as info:
            fail_once(rig, ALICE, secret)
        assert info.value.retry_at == rig.clock.now() + expected * SECOND
        rig.clock.advance(expected)
    assert rig.mfa.lock_state(ALICE).failures == 9
    assert rig.mfa.lock_state(ALICE).lockouts == 3
    assert locked_events(rig) == ["temporary"] * 3


def test_success_starts_the_back_off_over() -> None:
    """A success is a clean slate (reset()): the next lock is 30 s again, not 60 s."""
    rig = make_lock_rig(Lockout(max_failures=3, mode="backoff"))
    secret = enroll_active(rig, ALICE)
    for _ in range(3):
        fail_once(rig, ALICE, secret)
    rig.clock.advance(30)
    rig.mfa.verify(ALICE, rig.mfa.challenge(ALICE, "totp").id, right_code(rig, secret))
    assert rig.mfa.lock_state(ALICE).lockouts == 0
    rig.clock.advance(30)
    for _ in range(3):
        fail_once(rig, ALICE, secret)
    assert rig.mfa.lock_state(ALICE).locked_until == rig.clock.now() + 30 * SECOND


def test_failures_accumulate_across_challenges_and_sign_ins() -> None:
    """RFC 4226 7.3 / SECURITY.md 12: a new challenge or sign-in does not reset the count."""
    rig = make_lock_rig(Lockout(max_failures=5, mode="backoff"))
    secret = enroll_active(rig, ALICE)
    first = rig.mfa.challenge(ALICE, "totp")
    with pytest.raises(InvalidCode):
        rig.mfa.verify(ALICE, first.id, wrong_code(rig, secret))
    second = rig.mfa.challenge(ALICE, "totp")  # same sign-in, new challenge
    with pytest.raises(InvalidCode):
        rig.mfa.verify(ALICE, second.id, wrong_code(rig, secret))
    assert rig.mfa.lock_state(ALICE).failures == 2

    # a new sign-in later, served by another MFA instance over the same store
    rig.clock.advance(minutes=20)
    other = MFA(
        store=rig.store,
        keyring=rig.mfa.keyring,
        factors=[TOTP(issuer="ACME")],
        clock=rig.clock,
        events=rig.events,
        lockout=Lockout(max_failures=5, mode="backoff"),
    )
    for n in (3, 4):
        challenge = other.challenge(ALICE, "totp")
        with pytest.raises(InvalidCode):
            other.verify(ALICE, challenge.id, wrong_code(rig, secret))
        assert other.lock_state(ALICE).failures == n
    fail_once(rig, ALICE, secret)  # the 5th, back on the first instance
    assert rig.mfa.lock_state(ALICE).locked_until == rig.clock.now() + 30 * SECOND
    with pytest.raises(LockedOut):
        other.verify(ALICE, other.challenge(ALICE, "totp").id, right_code(rig, secret))


def test_failures_are_per_subject() -> None:
    rig = make_lock_rig(Lockout(max_failures=3))
    alice_secret = enroll_active(rig, ALICE)
    bob_secret = enroll_active(rig, BOB)
    for _ in range(3):
        fail_once(rig, ALICE, alice_secret)
    assert rig.mfa.lock_state(BOB).failures == 0
    proof = rig.mfa.verify(BOB, rig.mfa.challenge(BOB, "totp").id, right_code(rig, bob_secret))
    assert proof.subject_id == "bob"


def test_suspend_mode_needs_an_administrator() -> None:
    rig = make_lock_rig(Lockout(max_failures=3, mode="suspend"))
    secret = enroll_active(rig, ALICE)
    for _ in range(3):
        fail_once(rig, ALICE, secret)
    assert locked_events(rig) == ["suspended"]
    state = rig.mfa.lock_state(ALICE)
    assert state.suspended
    assert state.locked_until is None

    rig.clock.advance(dt.timedelta(days=30))
    challenge = rig.mfa.challenge(ALICE, "totp")
    with pytest.raises(LockedOut) as info:
        rig.mfa.verify(ALICE, challenge.id, right_code(rig, secret))
    assert info.value.suspended
    assert info.value.retry_at is None
    assert rig.mfa.lock_state(ALICE) == state

    unlocked = rig.mfa.unlock(ALICE, actor="admin")
    assert unlocked == LockState("alice", version=state.version + 1)
    assert rig.mfa.lock_state(ALICE) == unlocked
    [event] = rig.events.of_type(EventType.UNLOCKED)
    assert (event.subject_id, event.actor) == ("alice", "admin")
    assert rig.mfa.verify(ALICE, challenge.id, right_code(rig, secret)).subject_id == "alice"


def test_unlock_also_clears_a_temporary_lock() -> None:
    rig = make_lock_rig(Lockout(max_failures=2))
    secret = enroll_active(rig, ALICE)
    for _ in range(2):
        fail_once(rig, ALICE, secret)
    assert rig.mfa.lock_state(ALICE).locked_until is not None
    rig.mfa.unlock(ALICE, actor="helpdesk-7")
    challenge = rig.mfa.challenge(ALICE, "totp")
    assert rig.mfa.verify(ALICE, challenge.id, right_code(rig, secret)).subject_id == "alice"


def test_hard_limit_suspends_in_backoff_mode() -> None:
    rig = make_lock_rig(Lockout(max_failures=2, hard_limit=6, mode="backoff"))
    secret = enroll_active(rig, ALICE)
    waits: list[dt.timedelta] = []
    for n in range(1, 7):
        fail_once(rig, ALICE, secret)
        state = rig.mfa.lock_state(ALICE)
        assert state.failures == n
        if state.locked_until is not None and state.locked_until > rig.clock.now():
            waits.append(state.locked_until - rig.clock.now())
            rig.clock.advance(state.locked_until - rig.clock.now())
    assert waits == [30 * SECOND, 60 * SECOND]
    state = rig.mfa.lock_state(ALICE)
    assert state.suspended
    assert locked_events(rig) == ["temporary", "temporary", "suspended"]
    rig.clock.advance(dt.timedelta(days=1))
    with pytest.raises(LockedOut) as info:
        rig.mfa.verify(ALICE, rig.mfa.challenge(ALICE, "totp").id, right_code(rig, secret))
    assert info.value.suspended


def test_nist_preset_suspends_at_exactly_the_100th_failure() -> None:
    rig = make_lock_rig(Lockout.nist())
    secret = enroll_active(rig, ALICE)
    challenge = rig.mfa.challenge(ALICE, "totp")
    for n in range(1, 101):
        if n % 5 == 1 and n > 1:  # a challenge allows max_attempts=5
            challenge = rig.mfa.challenge(ALICE, "totp")
        assert not rig.mfa.lock_state(ALICE).suspended
        with pytest.raises(InvalidCode):
            rig.mfa.verify(ALICE, challenge.id, wrong_code(rig, secret))
        if n == 99:
            assert locked_events(rig) == []
    state = rig.mfa.lock_state(ALICE)
    assert (state.failures, state.suspended) == (100, True)
    assert locked_events(rig) == ["suspended"]
    assert len(rig.events.of_type(EventType.FAILED)) == 100
    with pytest.raises(LockedOut) as info:
        rig.mfa.verify(ALICE, rig.mfa.challenge(ALICE, "totp").id, right_code(rig, secret))
    assert info.value.suspended
    assert rig.mfa.lock_state(ALICE) == state


def test_failed_confirm_counts_against_the_same_budget() -> None:
    rig = make_lock_rig(Lockout(max_failures=3, mode="backoff"))
    enrollment = rig.mfa.enroll(ALICE, TOTP.setup(label="Phone"))
    secret = enrollment.secret
    for n in (1, 2, 3):
        with pytest.raises(InvalidCode):
            rig.mfa.confirm(ALICE, enrollment.id, wrong_code(rig, secret))
        assert rig.mfa.lock_state(ALICE).failures == n
    assert locked_events(rig) == ["temporary"]
    failed = rig.events.of_type(EventType.FAILED)
    assert [e.credential_id for e in failed] == [enrollment.id] * 3
    with pytest.raises(LockedOut):
        rig.mfa.confirm(ALICE, enrollment.id, right_code(rig, secret))
    assert rig.mfa.credentials(ALICE) == []  # still pending
    rig.clock.advance(30)
    assert rig.mfa.confirm(ALICE, enrollment.id, right_code(rig, secret)).active
    assert rig.mfa.lock_state(ALICE).failures == 0


MALFORMED: Final = [
    "",
    " ",
    "12345",
    "1234567",
    "12345a",
    "abcdef",
    "\u0661\u0662\u0663\u0664\u0665\u0666",  # Arabic-Indic 123456
    "12.345",
    "123\n456",
    "+12345",
    "1" * 65,
    "0x1234",
]


def test_malformed_codes_are_not_charged() -> None:
    rig = make_lock_rig(Lockout(max_failures=3))
    secret = enroll_active(rig, ALICE)
    challenge = rig.mfa.challenge(ALICE, "totp")
    before = rig.mfa.lock_state(ALICE)  # version 2: confirm charged, then reset
    for i in range(50):
        with pytest.raises(MalformedCode):
            rig.mfa.verify(ALICE, challenge.id, MALFORMED[i % len(MALFORMED)])
    assert rig.mfa.lock_state(ALICE) == before  # not even written
    assert before.failures == 0
    assert rig.store.get_challenge(challenge.id) == challenge  # no attempt used
    assert rig.events.of_type(EventType.FAILED) == []
    assert rig.mfa.verify(ALICE, challenge.id, right_code(rig, secret)).subject_id == "alice"


def test_replayed_code_counts_as_a_failure() -> None:
    rig = make_lock_rig(Lockout(max_failures=5))
    secret = enroll_active(rig, ALICE)
    code = right_code(rig, secret)
    rig.mfa.verify(ALICE, rig.mfa.challenge(ALICE, "totp").id, code)
    with pytest.raises(ReplayedCode):
        rig.mfa.verify(ALICE, rig.mfa.challenge(ALICE, "totp").id, code)
    assert rig.mfa.lock_state(ALICE).failures == 1
    [event] = rig.events.of_type(EventType.FAILED)
    assert event.reason == "ReplayedCode"


def test_lockout_failures_are_emitted_with_the_exception_name() -> None:
    rig = make_lock_rig(Lockout(max_failures=2))
    secret = enroll_active(rig, ALICE)
    before = rig.mfa.lock_state(ALICE)
    fail_once(rig, ALICE, secret)
    fail_once(rig, ALICE, secret)
    reasons = [e.reason for e in rig.events.of_type(EventType.FAILED)]
    assert reasons == ["InvalidCode", "InvalidCode"]
    # the charge is stored before the comparison; the pure function agrees with the store
    expected = _throttle.charge(
        dataclasses.replace(before, failures=1, version=before.version + 1),
        rig.mfa.lockout,
        rig.clock.now(),
    )
    assert rig.mfa.lock_state(ALICE) == expected
