"""Lockout maths: pure functions from one :class:`LockState` to the next.

The facade charges an attempt *before* comparing the code (SECURITY.md 14), by writing the
charged state with a conditional write. Because the charge refuses once the limit is
reached, N parallel guesses can never test more than the limit. A success resets the
count; a failure leaves the charge in place; while locked, nothing is charged and nothing
is reset, whatever the code (SECURITY.md 16).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Final, Literal

from mfakit._models import LockState, build_lock_state
from mfakit.exceptions import ConfigurationError, LockedOut

__all__ = [
    "NIST_MAX_FAILURES",
    "Lockout",
    "charge",
    "check",
    "is_locked",
    "reset",
    "settled",
    "triggered",
]

#: NIST SP 800-63B 5.2.2: no more than 100 consecutive failed attempts on one account.
NIST_MAX_FAILURES: Final = 100


@dataclasses.dataclass(frozen=True, slots=True)
class Lockout:
    """How a subject is locked after consecutive failures (SECURITY.md 12-17).

    Args:
        max_failures: Consecutive failures that trigger a lock (1 to 100).
        mode: ``"backoff"``: a temporary lock that doubles each time, from
            ``backoff_initial`` up to ``backoff_max``; ``"suspend"``: locked until an
            administrator unlocks.
        backoff_initial: First temporary lock.
        backoff_max: Longest temporary lock.
        hard_limit: In back-off mode, consecutive failures after which the subject is
            suspended anyway. Never above 100 (NIST SP 800-63B 5.2.2).

    The count is per subject and shared by every factor, challenge and sign-in: a new
    challenge does not reset it (RFC 4226 7.3); only a success or an unlock does.

    Raises:
        ConfigurationError: On a limit above 100 or below 1, or non-positive durations.
    """

    max_failures: int = 5
    mode: Literal["backoff", "suspend"] = "backoff"
    backoff_initial: dt.timedelta = dt.timedelta(seconds=30)
    backoff_max: dt.timedelta = dt.timedelta(hours=1)
    hard_limit: int = NIST_MAX_FAILURES

    def __post_init__(self) -> None:
        for name in ("max_failures", "hard_limit"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigurationError(f"Lockout.{name} must be int")
            if not 1 <= value <= NIST_MAX_FAILURES:
                raise ConfigurationError(
                    f"Lockout.{name} must be between 1 and {NIST_MAX_FAILURES} "
                    "(NIST SP 800-63B 5.2.2)"
                )
        if self.hard_limit < self.max_failures:
            raise ConfigurationError("Lockout.hard_limit must be >= max_failures")
        for name in ("backoff_initial", "backoff_max"):
            if not isinstance(getattr(self, name), dt.timedelta):
                raise ConfigurationError(f"Lockout.{name} must be a datetime.timedelta")
        if self.mode not in ("backoff", "suspend"):
            raise ConfigurationError("Lockout.mode must be 'backoff' or 'suspend'")
        if self.backoff_initial <= dt.timedelta(0) or self.backoff_max < self.backoff_initial:
            raise ConfigurationError("Lockout back-off durations must be positive and ordered")

    @classmethod
    def nist(cls) -> Lockout:
        """NIST SP 800-63B 5.2.2: suspend after 100 consecutive failures."""
        return cls(max_failures=NIST_MAX_FAILURES, mode="suspend")

    @classmethod
    def ism(cls) -> Lockout:
        """Australian ISM-1403: lock after 5 failures until an administrator unlocks."""
        return cls(max_failures=5, mode="suspend")

    def lock_duration(self, lockouts: int) -> dt.timedelta:
        """Length of the temporary lock number ``lockouts + 1`` (growing back-off)."""
        duration = self.backoff_initial
        # Double at most until the cap: never build a timedelta past timedelta.max.
        for _ in range(min(lockouts, 64)):
            if duration >= self.backoff_max:
                break
            duration = min(duration * 2, self.backoff_max)
        return min(duration, self.backoff_max)


def is_locked(state: LockState, now: dt.datetime) -> bool:
    """Whether ``state`` refuses attempts at ``now``."""
    return state.suspended or (state.locked_until is not None and now < state.locked_until)


def check(state: LockState, now: dt.datetime) -> None:
    """Raise :class:`LockedOut` if ``state`` refuses attempts at ``now``."""
    if state.suspended:
        raise LockedOut("subject is suspended until an administrator unlocks it", suspended=True)
    if state.locked_until is not None and now < state.locked_until:
        raise LockedOut(
            f"subject is locked until {state.locked_until.isoformat()}",
            retry_at=state.locked_until,
        )


def charge(state: LockState, policy: Lockout, now: dt.datetime) -> LockState:
    """Charge one attempt: the state to write *before* comparing a code.

    The returned state already carries the lock this attempt would trigger if it fails;
    a success replaces it with :func:`reset`.

    Raises:
        LockedOut: If ``state`` is locked at ``now``; nothing is charged.
    """
    check(state, now)
    failures = state.failures + 1
    locked_until = state.locked_until
    suspended = False
    lockouts = state.lockouts
    if failures >= policy.hard_limit:
        suspended = True
    elif failures % policy.max_failures == 0:
        if policy.mode == "suspend":
            suspended = True
        else:
            locked_until = now + policy.lock_duration(lockouts)
            lockouts += 1
    # Field order of LockState; built without __init__ on this hot path (see _builder).
    return build_lock_state(
        state.subject_id, failures, locked_until, suspended, lockouts, state.version + 1
    )


def triggered(charged: LockState, policy: Lockout) -> bool:
    """Whether the attempt that produced ``charged`` set a lock, should it fail."""
    return charged.suspended or (
        policy.mode == "backoff" and charged.failures % policy.max_failures == 0
    )


def reset(state: LockState) -> LockState:
    """The state after a success or an administrator's unlock: a clean slate."""
    return build_lock_state(state.subject_id, 0, None, False, 0, state.version + 1)


def settled(state: LockState) -> LockState | None:
    """What a success writes in the same unit that charged it, or ``None`` for nothing.

    Inside one :meth:`~mfakit.typing.Store.update_subject` unit, "charge, then reset on
    success" is a single write of the clean slate on top of ``state`` (the charge is
    never visible on its own), and no write at all if ``state`` is clean already.
    """
    clean = state.failures == 0 and state.lockouts == 0 and state.locked_until is None
    if clean and not state.suspended:
        return None
    return build_lock_state(state.subject_id, 0, None, False, 0, state.version + 1)
