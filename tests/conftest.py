"""Shared fixtures for mfakit's own test suite.

Everything runs in memory on a :class:`FakeClock` (2026-01-01T00:00:00Z, which is a TOTP
period boundary), so no test sleeps or touches the network.

Fixtures:

* ``clock``, ``store``, ``events``, ``keyring``: the parts an :class:`MFA` is built from;
* ``mfa``: ``MFA`` with ``TOTP(issuer="ACME")`` over those parts and the default lockout;
* ``make_mfa``: builds another ``MFA`` over the *same* parts, with other factors or
  lockout (for example ``make_mfa(lockout=Lockout(max_failures=100, mode="suspend"))``);
* ``alice``, ``bob``: two subjects of tenant ``"t1"``;
* ``enrolled``: the helper :func:`enroll_totp` (also importable from this module).

Typical use::

    def test_sign_in(mfa: MFA, alice: Subject, clock: FakeClock, enrolled: EnrollTOTP) -> None:
        enrollment, credential = enrolled(mfa, alice, clock)
        challenge = mfa.challenge(alice, "totp")
        mfa.verify(alice, challenge.id, code_now(enrollment, clock))
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Protocol

import pytest

from mfakit import MFA, Credential, Keyring, Lockout, Subject
from mfakit.factors import TOTP, Factor, TOTPEnrollment
from mfakit.testing import FakeClock, ListSink, MemoryStore, totp_now

__all__ = ["EnrollTOTP", "MakeMFA", "code_now", "enroll_totp"]


def code_now(enrollment: TOTPEnrollment, clock: FakeClock, *, offset: int = 0) -> str:
    """The code the authenticator app of ``enrollment`` shows now (``offset`` in periods).

    Uses the credential's own parameters (digits, period, algorithm).
    """
    params = enrollment.credential.params
    return totp_now(
        enrollment.secret,
        clock.now(),
        digits=params["digits"],
        period=params["period"],
        algorithm=params["algorithm"],
        offset=offset,
    )


def enroll_totp(
    mfa: MFA, subject: Subject, clock: FakeClock, *, label: str = "Authenticator app"
) -> tuple[TOTPEnrollment, Credential]:
    """Enrol and confirm a TOTP credential for ``subject``, then advance one period.

    Returns ``(enrollment, credential)``: the enrolment (with the base32 ``secret``) and the
    active credential as ``confirm`` returned it. Confirming records the current time step,
    so the clock is moved one period on: the code shown *after* this call is fresh and
    signs in.
    """
    enrollment = mfa.enroll(subject, TOTP.setup(label=label))
    credential = mfa.confirm(subject, enrollment.id, code_now(enrollment, clock))
    assert credential.active
    clock.advance(enrollment.credential.params["period"])
    return enrollment, credential


class EnrollTOTP(Protocol):
    """Type of the ``enrolled`` fixture (see :func:`enroll_totp`)."""

    def __call__(
        self, mfa: MFA, subject: Subject, clock: FakeClock, *, label: str = ...
    ) -> tuple[TOTPEnrollment, Credential]: ...


class MakeMFA(Protocol):
    """Type of the ``make_mfa`` fixture."""

    def __call__(
        self, *, factors: Sequence[Factor] | None = ..., lockout: Lockout | None = ...
    ) -> MFA: ...


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock at 2026-01-01T00:00:00Z (a multiple of 30 s since the epoch)."""
    return FakeClock(dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))


@pytest.fixture
def store() -> MemoryStore:
    """A fresh in-memory store."""
    return MemoryStore()


@pytest.fixture
def events() -> ListSink:
    """Records every audit event the ``mfa`` fixture emits."""
    return ListSink()


@pytest.fixture
def keyring() -> Keyring:
    """A throw-away keyring with one random key."""
    return Keyring.ephemeral()


@pytest.fixture
def make_mfa(clock: FakeClock, store: MemoryStore, events: ListSink, keyring: Keyring) -> MakeMFA:
    """Build an ``MFA`` over the shared clock, store, events and keyring.

    ``factors`` defaults to ``[TOTP(issuer="ACME")]`` and ``lockout`` to the library
    default.
    """

    def make(*, factors: Sequence[Factor] | None = None, lockout: Lockout | None = None) -> MFA:
        return MFA(
            store=store,
            keyring=keyring,
            factors=list(factors) if factors is not None else [TOTP(issuer="ACME")],
            clock=clock,
            events=events,
            lockout=lockout,
        )

    return make


@pytest.fixture
def mfa(make_mfa: MakeMFA) -> MFA:
    """``MFA`` with ``TOTP(issuer="ACME")``, the default lockout and the shared parts."""
    return make_mfa()


@pytest.fixture
def alice() -> Subject:
    """Subject ``u-alice`` of tenant ``t1``."""
    return Subject(
        id="u-alice",
        tenant="t1",
        username="alice",
        email="alice@example.com",
        display_name="Alice",
    )


@pytest.fixture
def bob() -> Subject:
    """Subject ``u-bob`` of tenant ``t1``."""
    return Subject(
        id="u-bob", tenant="t1", username="bob", email="bob@example.com", display_name="Bob"
    )


@pytest.fixture
def enrolled() -> EnrollTOTP:
    """The :func:`enroll_totp` helper: ``enrolled(mfa, subject, clock) -> (enrollment, cred)``."""
    return enroll_totp
