"""The pytest plugin's fixtures, as a host's test suite sees them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")

pytest_plugins = ["pytester"]


def test_plugin_fixtures_work_in_a_host_test_suite(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]))
    pytester.makepyfile(
        """
        import datetime as dt

        from mfakit import MFA, EventType, Subject
        from mfakit.factors import TOTP
        from mfakit.testing import totp_now


        def test_host_flow(mfa_clock, mfa_store, mfa_events, mfa_keyring):
            mfa = MFA(store=mfa_store, keyring=mfa_keyring, factors=[TOTP(issuer="Host")],
                      clock=mfa_clock, events=mfa_events)
            bob = Subject(id="b1", username="bob")
            enrollment = mfa.enroll(bob, "totp")
            mfa.confirm(bob, enrollment.id, totp_now(enrollment.secret, mfa_clock.now()))
            mfa_clock.advance(30)
            challenge = mfa.challenge(bob, "totp")
            proof = mfa.verify(bob, challenge.id, totp_now(enrollment.secret, mfa_clock.now()))
            assert proof.verified_at == dt.datetime(2026, 1, 1, 0, 0, 30, tzinfo=dt.timezone.utc)
            assert [e.type for e in mfa_events.of_type(EventType.VERIFIED)] == [EventType.VERIFIED]
            assert len(mfa_store.dump()["credentials"]) == 1
        """
    )
    # Load the plugin explicitly, so the check holds whether or not mfakit is installed
    # (an installed mfakit registers it through its pytest11 entry point).
    result = pytester.runpytest_subprocess("-p", "no:mfakit", "-p", "mfakit.testing._plugin")
    result.assert_outcomes(passed=1)
