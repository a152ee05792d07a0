"""mfakit configured as the practice suite (shared/reference/aps-mfa.txt, docs/deployments.md).

An authenticator app (QR code or manual key) or SMS to an Australian, New Zealand or UK
mobile, a recovery PIN for a lost device, administrators with the user-management role who
reset and unlock the users of their practice, 24-hour sessions with an inactivity timeout.
"""

from __future__ import annotations

import datetime as dt
import logging

from mfakit import (
    MFA,
    Keyring,
    Lockout,
    LoggingSink,
    Policy,
    RoleAuthorizer,
    SendQuota,
    SessionLimits,
)
from mfakit.factors import SMSOTP, TOTP, RecoveryPIN, SendQuotas
from mfakit.hazmat.hashing import SecretHasher
from mfakit.typing import Clock, SMSSender, Store

#: The role that may reset and unlock users ("User Management+").
ADMIN_ROLE = "user_management"
#: The countries of the SMS picker, as the reference lists them, then "Other".
COUNTRIES: tuple[tuple[str, str], ...] = (
    ("AU", "Australia"),
    ("NZ", "New Zealand"),
    ("GB", "United Kingdom"),
    ("Other", "Other"),
)


def practice_suite_mfa(
    *,
    store: Store,
    keyring: Keyring,
    sms_sender: SMSSender,
    issuer: str = "Practice Suite",
    session_lifetime: dt.timedelta = dt.timedelta(hours=24),
    idle_timeout: dt.timedelta = dt.timedelta(minutes=15),
    resend_cooldown: dt.timedelta = dt.timedelta(seconds=30),
    code_ttl: dt.timedelta = dt.timedelta(minutes=5),
    hasher: SecretHasher | None = None,
    clock: Clock | None = None,
) -> MFA:
    """The facade as the practice suite's help page describes it.

    Args:
        store: Where mfakit keeps credentials, challenges and lock state.
        keyring: Encrypts TOTP seeds and phone numbers (``MFAKIT_KEYS``).
        sms_sender: Sends the SMS codes (an :class:`~mfakit.testing.Outbox` in development).
        issuer: The name shown in authenticator apps and SMS texts.
        session_lifetime: Sign-in lasts this long ("generally ... 24hrs").
        idle_timeout: Inactivity timeout ("15 minutes if in-activity as per the ATO").
        resend_cooldown: How long after a send "Resend" works again.
        code_ttl: How long an SMS code is accepted (at most 10 minutes).
        hasher: argon2id for the recovery PIN; ``None`` for mfakit's default.
        clock: The time source; ``None`` for the system clock (phones use real time).
    """
    return MFA(
        store=store,
        keyring=keyring,
        clock=clock,
        events=LoggingSink(logging.getLogger("flask_app.audit")),
        factors=[
            TOTP(issuer=issuer),
            SMSOTP(
                sender=sms_sender,
                issuer=issuer,
                regions={"AU", "NZ", "GB"},
                digits=6,
                code_ttl=code_ttl,
                resend_cooldown=resend_cooldown,
                max_sends=3,
                quotas=SendQuotas(
                    per_destination=SendQuota(5, dt.timedelta(hours=1)),
                    per_subject=SendQuota(10, dt.timedelta(hours=1)),
                    per_tenant=SendQuota(500, dt.timedelta(hours=1)),
                ),
            ),
            RecoveryPIN(hasher=hasher),
        ],
        lockout=Lockout(),
        policy=Policy.practice_suite(session=SessionLimits(session_lifetime, idle_timeout)),
        authorizer=RoleAuthorizer(
            {"reset": {ADMIN_ROLE}, "unlock": {ADMIN_ROLE}, "report": {ADMIN_ROLE}}
        ),
    )
