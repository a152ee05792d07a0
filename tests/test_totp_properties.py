"""Properties of TOTP sign-in through the facade, checked against small executable models.

The models recompute every code with :func:`mfakit.hazmat.otp.hotp` and decide acceptance
from the rule in SECURITY.md 2-3 (window of +-1 step; a step is accepted only if it is
strictly later than every step accepted before), so they stay exact even in the rare case
where two steps of a secret share a code. Secrets are drawn by hypothesis (or derived
deterministically), never from ``secrets``, so every example replays exactly.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from typing import Final, Literal, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from mfakit import (
    MFA,
    ChallengeNotFound,
    Credential,
    CredentialNotFound,
    ExpiredCode,
    InvalidCode,
    Keyring,
    LockedOut,
    Lockout,
    LockState,
    MFAError,
    NotEnrolled,
    ReplayedCode,
    Subject,
    Verification,
)
from mfakit.factors import TOTP
from mfakit.hazmat.otp import hotp
from mfakit.testing import FakeClock, MemoryStore, totp_now

T0: Final = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
PERIOD: Final = 30
WINDOW: Final = 1
KEYRING: Final = Keyring.ephemeral()
FACTOR: Final = TOTP(issuer="ACME")
ALICE: Final = Subject(id="u-alice", tenant="t1", username="alice")
BOB: Final = Subject(id="u-bob", tenant="t1", username="bob")
#: Locking never interferes in (a) and (b): 100 failures are out of reach.
NO_LOCK: Final = Lockout(max_failures=100, mode="suspend")

_T = TypeVar("_T")

Outcome = tuple[Literal["accepted"], int] | tuple[Literal["replayed", "invalid"], None]

secrets_20 = st.binary(min_size=20, max_size=20)


def b32(key: bytes) -> str:
    return base64.b32encode(key).decode().rstrip("=")


def current_step(clock: FakeClock) -> int:
    return int(clock.now().timestamp()) // PERIOD


def expected_outcome(key: bytes, current: int, code: str, last: int) -> Outcome:
    """The specification of :meth:`TOTP.check` for one credential.

    Steps are tried in order of preference (now, the past, the future); the first one
    whose code matches and that is later than ``last`` is accepted. A match at or before
    ``last`` only is a replay; no match at all is an invalid code.
    """
    order = [current]
    for distance in range(1, WINDOW + 1):
        order += [current - distance, current + distance]
    matches = [s for s in order if s >= 0 and hotp(key, s) == code]
    for step in matches:
        if step > last:
            return ("accepted", step)
    return ("replayed", None) if matches else ("invalid", None)


def attempt(call: Callable[[], _T]) -> _T | MFAError:
    try:
        return call()
    except MFAError as exc:
        return exc


def new_mfa(clock: FakeClock, lockout: Lockout = NO_LOCK) -> MFA:
    return MFA(store=MemoryStore(), keyring=KEYRING, factors=[FACTOR], clock=clock, lockout=lockout)


def enrol_confirmed(mfa: MFA, clock: FakeClock, key: bytes) -> Credential:
    enrollment = mfa.enroll(ALICE, TOTP.setup(secret=b32(key)))
    return mfa.confirm(ALICE, enrollment.id, hotp(key, current_step(clock)))


# (a) the replay rule --------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    key=secrets_20,
    start=st.integers(0, 10**8),
    moves=st.lists(st.tuples(st.integers(0, 120), st.integers(-2, 2)), min_size=1, max_size=20),
)
def test_accepted_steps_are_exactly_the_fresh_steps_in_the_window(
    key: bytes, start: int, moves: Sequence[tuple[int, int]]
) -> None:
    """Submit the code of step ``now + offset`` after each clock move.

    A submission is accepted iff its step is within the window and strictly greater than
    every step accepted before (the confirm's step included); otherwise it is a replay (in
    the window, not fresh) or invalid (outside the window). Failures are charged and a
    success clears them.
    """
    clock = FakeClock(T0 + dt.timedelta(seconds=start))
    mfa = new_mfa(clock)
    credential = enrol_confirmed(mfa, clock, key)
    last = credential.counter
    assert last == current_step(clock)
    failures = 0

    for advance, offset in moves:
        clock.advance(advance)
        now = current_step(clock)
        submitted = now + offset
        code = totp_now(b32(key), clock.now(), offset=offset)
        expected = expected_outcome(key, now, code, last)
        neighbourhood = [hotp(key, s) for s in range(now - 2, now + 3)]
        if len(set(neighbourhood)) == len(neighbourhood):
            # Without a code collision, the model is the plain rule of SECURITY.md 3.
            in_window = abs(offset) <= WINDOW
            if in_window and submitted > last:
                assert expected == ("accepted", submitted)
            else:
                assert expected == ("replayed" if in_window else "invalid", None)

        challenge = mfa.challenge(ALICE, "totp")
        result = attempt(lambda: mfa.verify(ALICE, challenge.id, code))  # noqa: B023
        stored = mfa.store.get_credential(credential.id)
        assert stored is not None
        if expected[0] == "accepted":
            assert isinstance(result, Verification), result
            assert expected[1] > last
            last = expected[1]
            failures = 0
        else:
            assert type(result) is (ReplayedCode if expected[0] == "replayed" else InvalidCode)
            failures += 1
        assert stored.counter == last
        assert mfa.lock_state(ALICE).failures == failures


# (b) any other code is refused -----------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    key=secrets_20,
    start=st.integers(0, 10**8),
    submitted=st.one_of(
        st.integers(0, 999_999).map(lambda n: f"{n:06d}"),
        st.integers(-WINDOW, WINDOW),  # sometimes the right code of a window step
    ),
)
def test_a_code_of_no_window_step_is_refused(key: bytes, start: int, submitted: str | int) -> None:
    clock = FakeClock(T0 + dt.timedelta(seconds=start))
    mfa = new_mfa(clock)
    credential = enrol_confirmed(mfa, clock, key)
    clock.advance(5 * PERIOD)  # every step of the window is fresh
    window = {totp_now(b32(key), clock.now(), offset=o) for o in range(-WINDOW, WINDOW + 1)}
    code = (
        submitted
        if isinstance(submitted, str)
        else totp_now(b32(key), clock.now(), offset=submitted)
    )
    challenge = mfa.challenge(ALICE, "totp")
    if code in window:
        assert mfa.verify(ALICE, challenge.id, code).credential_id == credential.id
    else:
        with pytest.raises(InvalidCode):
            mfa.verify(ALICE, challenge.id, code)
        stored = mfa.store.get_credential(credential.id)
        assert stored == credential  # nothing about the credential changed
        assert mfa.lock_state(ALICE).failures == 1


# (c) a stateful model of the whole TOTP flow ----------------------------------------------

#: Credentials still usable (active, or pending and not expired) at a time.
MAX_CREDENTIALS: Final = 3
#: Credentials per run in all (expired pending enrolments stay in the store).
MAX_ENROLMENTS: Final = 5
#: Open (live) challenges at a time; dead ones stay in the model for the invariants.
MAX_OPEN_CHALLENGES: Final = 3
#: Picks a challenge counting back from the newest: mostly the newest, sometimes older.
RECENT: Final = st.one_of(st.just(0), st.integers(0, 15))
#: Small limits, so that locks, growing back-off and suspension all happen in a run.
MACHINE_LOCKOUT: Final = Lockout(
    max_failures=3,
    mode="backoff",
    backoff_initial=dt.timedelta(seconds=30),
    backoff_max=dt.timedelta(seconds=60),
    hard_limit=7,
)
#: Deterministic secrets, so that every run of an example computes the same codes.
MACHINE_KEYS: Final = [hashlib.sha1(f"mfakit machine {i}".encode()).digest() for i in range(5)]


@dataclasses.dataclass
class ModelCredential:
    id: str
    key: bytes
    expires_at: dt.datetime
    active: bool = False
    last: int = -1


@dataclasses.dataclass
class ModelChallenge:
    id: str
    expires_at: dt.datetime
    attempts: int = 0
    alive: bool = True


class TOTPFlow(RuleBasedStateMachine):
    """Enrol, confirm, challenge, verify (right, wrong, replayed), advance, unlock."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(T0)
        self.store = MemoryStore()
        self.mfa = MFA(
            store=self.store,
            keyring=KEYRING,
            factors=[FACTOR],
            clock=self.clock,
            lockout=MACHINE_LOCKOUT,
        )
        self.credentials: list[ModelCredential] = []
        self.challenges: list[ModelChallenge] = []
        # the model of the subject's lock state
        self.failures = 0
        self.locked_until: dt.datetime | None = None
        self.suspended = False
        self.lockouts = 0
        # every step the store recorded as accepted, per credential
        self.accepted: dict[str, list[int]] = {}

    # model of the lockout ---------------------------------------------------------------
    def model_locked(self) -> bool:
        now = self.clock.now()
        return self.suspended or (self.locked_until is not None and now < self.locked_until)

    def model_charge(self) -> None:
        self.failures += 1
        if self.failures >= MACHINE_LOCKOUT.hard_limit:
            self.suspended = True
        elif self.failures % MACHINE_LOCKOUT.max_failures == 0:
            duration = min(
                MACHINE_LOCKOUT.backoff_initial * 2**self.lockouts, MACHINE_LOCKOUT.backoff_max
            )
            self.locked_until = self.clock.now() + duration
            self.lockouts += 1

    def model_reset(self) -> None:
        self.failures, self.locked_until, self.suspended, self.lockouts = 0, None, False, 0

    def store_says_locked(self) -> bool:
        state = self.mfa.lock_state(ALICE)
        until = state.locked_until
        return state.suspended or (until is not None and self.clock.now() < until)

    # helpers ----------------------------------------------------------------------------
    def usable(self) -> list[ModelCredential]:
        now = self.clock.now()
        return [c for c in self.credentials if c.active or now < c.expires_at]

    def has_active(self) -> bool:
        return any(c.active for c in self.credentials)

    def open_challenges(self) -> int:
        now = self.clock.now()
        return sum(c.alive and now < c.expires_at for c in self.challenges)

    def code(self, credential: ModelCredential, kind: str, number: int) -> str:
        if kind == "random":
            return f"{number:06d}"
        if kind == "replay":
            return hotp(credential.key, max(credential.last, 0))
        return hotp(credential.key, max(current_step(self.clock) + int(kind), 0))

    def record_acceptance(self, credential: ModelCredential, step: int) -> None:
        stored = self.store.get_credential(credential.id)
        assert stored is not None
        assert stored.counter == step
        history = self.accepted.setdefault(credential.id, [])
        assert not history or step > history[-1], "accepted steps must strictly increase"
        history.append(step)
        credential.last = step

    # rules ------------------------------------------------------------------------------
    @initialize(with_app=st.booleans())
    def start(self, with_app: bool) -> None:
        """Start with nothing, or with one confirmed app."""
        assert self.mfa.lock_state(ALICE) == LockState(ALICE.id)
        if with_app:
            self.enroll()
            self.check_confirm(self.credentials[0], "0", 0)
            assert self.credentials[0].active

    @precondition(
        lambda self: len(self.credentials) < MAX_ENROLMENTS and len(self.usable()) < MAX_CREDENTIALS
    )
    @rule()
    def enroll(self) -> None:
        key = MACHINE_KEYS[len(self.credentials)]
        enrollment = self.mfa.enroll(
            ALICE, TOTP.setup(label=f"App {len(self.credentials)}", secret=b32(key))
        )
        assert not enrollment.credential.active
        self.credentials.append(
            ModelCredential(enrollment.id, key, self.clock.now() + dt.timedelta(minutes=10))
        )

    @precondition(lambda self: any(not c.active for c in self.credentials))
    @rule(
        index=st.integers(0, MAX_ENROLMENTS - 1),
        kind=st.sampled_from(("0", "0", "-1", "+1", "+2", "random")),
        number=st.integers(0, 999_999),
    )
    def confirm(self, index: int, kind: str, number: int) -> None:
        """Confirm a pending enrolment (expired ones included) with a right or wrong code."""
        pending = [c for c in self.credentials if not c.active]
        self.check_confirm(pending[index % len(pending)], kind, number)

    @precondition(lambda self: self.has_active())
    @rule(index=st.integers(0, MAX_ENROLMENTS - 1))
    def confirm_active(self, index: int) -> None:
        """Confirming an active credential is refused and charges nothing."""
        active = [c for c in self.credentials if c.active]
        self.check_confirm(active[index % len(active)], "+1", 0)

    def check_confirm(self, credential: ModelCredential, kind: str, number: int) -> None:
        code = self.code(credential, kind, number)
        was_locked = self.store_says_locked()
        expected: type[MFAError] | None
        if credential.active:
            expected = CredentialNotFound
        elif self.clock.now() >= credential.expires_at:
            expected = ExpiredCode
        elif self.model_locked():
            expected = LockedOut
        else:
            self.model_charge()
            verdict = expected_outcome(credential.key, current_step(self.clock), code, -1)
            expected = None if verdict[0] == "accepted" else InvalidCode
        result = attempt(lambda: self.mfa.confirm(ALICE, credential.id, code))
        if expected is None:
            assert isinstance(result, Credential), result
            assert result.active
            assert not was_locked
            self.model_reset()
            credential.active = True
            self.record_acceptance(credential, result.counter)
        else:
            assert type(result) is expected, (expected, result)

    @precondition(lambda self: self.open_challenges() < MAX_OPEN_CHALLENGES)
    @rule()
    def challenge(self) -> None:
        challenge = self.mfa.challenge(ALICE, "totp")
        expires_at = self.clock.now() + dt.timedelta(minutes=5)
        assert challenge.expires_at == expires_at
        self.challenges.append(ModelChallenge(challenge.id, expires_at))

    @precondition(lambda self: bool(self.challenges) and self.has_active())
    @rule(recent=RECENT, index=st.integers(0, MAX_CREDENTIALS - 1), offset=st.integers(-1, 1))
    def verify_right_code(self, recent: int, index: int, offset: int) -> None:
        """A code an enrolled app shows now (within the window)."""
        self.check_verify(recent, self.app_code(index, str(offset), 0))

    @precondition(lambda self: bool(self.challenges))
    @rule(
        recent=RECENT,
        index=st.integers(0, MAX_CREDENTIALS - 1),
        kind=st.sampled_from(("random", "-2", "+2")),
        number=st.integers(0, 999_999),
    )
    def verify_wrong_code(self, recent: int, index: int, kind: str, number: int) -> None:
        """A random code, or one of a step outside the window."""
        self.check_verify(recent, self.app_code(index, kind, number))

    @precondition(lambda self: bool(self.challenges) and self.has_active())
    @rule(recent=RECENT, index=st.integers(0, MAX_CREDENTIALS - 1))
    def verify_replay(self, recent: int, index: int) -> None:
        """The code of the last step a credential accepted."""
        self.check_verify(recent, self.app_code(index, "replay", 0))

    def app_code(self, index: int, kind: str, number: int) -> str:
        """A code of an active credential if there is one, else of any, else random."""
        candidates = [c for c in self.credentials if c.active] or self.credentials
        if not candidates:
            return f"{number:06d}"
        return self.code(candidates[index % len(candidates)], kind, number)

    def check_verify(self, recent: int, code: str) -> None:
        challenge = self.challenges[-1 - recent % len(self.challenges)]
        was_locked = self.store_says_locked()

        expected: type[MFAError] | ModelCredential
        accepted_step = -1
        if not challenge.alive:
            expected = ChallengeNotFound
        elif self.clock.now() >= challenge.expires_at:
            expected = ExpiredCode
        elif self.model_locked():
            expected = LockedOut
        else:
            self.model_charge()
            if challenge.attempts >= FACTOR.max_attempts:
                challenge.alive = False
                expected = ChallengeNotFound
            else:
                challenge.attempts += 1
                active = [c for c in self.credentials if c.active]
                expected = NotEnrolled if not active else InvalidCode
                for credential in active:
                    verdict = expected_outcome(
                        credential.key, current_step(self.clock), code, credential.last
                    )
                    if verdict[0] == "accepted":
                        expected, accepted_step = credential, verdict[1]
                        break
                    if verdict[0] == "replayed":
                        expected = ReplayedCode

        result = attempt(lambda: self.mfa.verify(ALICE, challenge.id, code))
        if isinstance(expected, ModelCredential):
            assert isinstance(result, Verification), result
            assert not was_locked, "a locked subject verified"
            assert result.credential_id == expected.id
            assert result.verified_at == self.clock.now()
            self.model_reset()
            challenge.alive = False
            self.record_acceptance(expected, accepted_step)
            assert self.store.get_challenge(challenge.id) is None
        else:
            assert type(result) is expected, (expected, result)
            if was_locked:
                assert isinstance(result, (LockedOut, ChallengeNotFound, ExpiredCode))

    @precondition(lambda self: bool(self.challenges))
    @rule(recent=RECENT, number=st.integers(0, 999_999))
    def verify_as_another_subject(self, recent: int, number: int) -> None:
        challenge = self.challenges[-1 - recent % len(self.challenges)]
        before = self.store.dump()
        with pytest.raises(ChallengeNotFound):
            self.mfa.verify(BOB, challenge.id, f"{number:06d}")
        assert self.store.dump() == before

    @rule(seconds=st.integers(0, 45))
    def advance(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @rule(seconds=st.sampled_from([121, 299, 300, 601]))
    def wait_long(self, seconds: int) -> None:
        """Outlast back-off locks, challenges (5 min) and pending enrolments (10 min)."""
        self.clock.advance(seconds)

    @rule()
    def unlock(self) -> None:
        state = self.mfa.unlock(ALICE, actor="admin1")
        self.model_reset()
        assert (state.failures, state.locked_until, state.suspended) == (0, None, False)

    # invariants -------------------------------------------------------------------------
    @invariant()
    def lock_state_matches_the_model(self) -> None:
        state = self.mfa.lock_state(ALICE)
        assert (state.failures, state.locked_until, state.suspended, state.lockouts) == (
            self.failures,
            self.locked_until,
            self.suspended,
            self.lockouts,
        )
        assert state.failures <= MACHINE_LOCKOUT.hard_limit

    @invariant()
    def credentials_match_the_model(self) -> None:
        for credential in self.credentials:
            stored = self.store.get_credential(credential.id)
            assert stored is not None
            assert stored.active == credential.active
            assert stored.counter == credential.last

    @invariant()
    def dead_challenges_never_come_back(self) -> None:
        for challenge in self.challenges:
            if not challenge.alive:
                assert self.store.get_challenge(challenge.id) is None


TOTPFlow.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestTOTPFlow = TOTPFlow.TestCase
