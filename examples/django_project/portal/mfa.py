"""mfakit configured as the register (docs/deployments.md), built once per process.

``get_flow`` and ``subject_for`` are what ``settings.MFAKIT_FLOW`` and
``settings.MFAKIT_SUBJECT`` name for :mod:`mfakit.contrib.django.middleware`.
"""

from __future__ import annotations

import datetime as dt
import functools

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.utils.module_loading import import_string

from mfakit import (
    MFA,
    Actor,
    Keyring,
    Lockout,
    LoggingSink,
    Policy,
    RoleAuthorizer,
    SendQuota,
    SessionLimits,
    SignInFlow,
    Subject,
)
from mfakit.factors import AnswerRules, EmailOTP, EmailTemplate, SecretQuestions, SendQuotas
from mfakit.hazmat.hashing import SecretHasher

from .clock import CLOCK
from .mail import DjangoEmailSender
from .models import Profile

#: The questions users choose from (the register's help page does not print its list).
QUESTIONS = {
    "birth-city": "In which city or town were you born?",
    "first-school": "What was the name of your first school?",
    "first-job": "What was your first job?",
    "first-car": "What was the make and model of your first car?",
    "childhood-street": "What street did you live on as a child?",
    "parent-middle": "What is your oldest parent's middle name?",
}

#: "3 unique questions, 3 unique answers, at least 4 characters per answer".
CURRENT_RULES = AnswerRules(count=3, min_length=4)
#: The rules before the roll-out, for importing old sets (they get the must-update prompt).
OLD_RULES = AnswerRules(count=3, min_length=1, unique_answers=False)


def hasher() -> SecretHasher | None:
    """argon2id with SecretHasher()'s defaults, or OWASP's minimum for the browser tests."""
    return SecretHasher.owasp_minimum() if settings.MFAKIT_FAST_HASHING else None


def policy() -> Policy:
    """``Policy.register``: e-mail codes to the profile address, secret questions as the
    fallback, three months' grace from the launch, review your details first; sessions of
    24 hours with the configured inactivity timeout."""
    return Policy.register(
        launched_at=settings.MFAKIT_LAUNCHED_AT,
        session=SessionLimits(
            dt.timedelta(hours=settings.MFAKIT_SESSION_HOURS),
            dt.timedelta(seconds=settings.MFAKIT_IDLE_SECONDS),
        ),
    )


@functools.cache
def get_mfa() -> MFA:
    """The facade (one per process: it holds the store's connection pool)."""
    return MFA(
        store=import_string(settings.MFAKIT_STORE)(),
        keyring=Keyring.from_string(settings.MFAKIT_KEYS),
        clock=CLOCK,
        events=LoggingSink(),
        factors=[
            EmailOTP(
                sender=DjangoEmailSender(),
                from_address=settings.DEFAULT_FROM_EMAIL,
                issuer="Register",
                use_profile_address=True,
                # the username in the subject line, the first name in the body
                template=EmailTemplate(),
                # room for a shared mailbox ("several users with the same email address")
                quotas=SendQuotas(per_destination=SendQuota(30, dt.timedelta(hours=1))),
            ),
            SecretQuestions(QUESTIONS, rules=CURRENT_RULES, hasher=hasher()),
        ],
        # "multiple users entering incorrect one-time passcodes can suspend the user"
        lockout=Lockout.ism(),
        policy=policy(),
        authorizer=RoleAuthorizer(
            {
                "report": {"account_admin"},
                "unlock": {"account_admin"},
                "reset": {"account_admin"},
                "view_questions": {"account_admin"},
            }
        ),
    )


@functools.cache
def get_flow() -> SignInFlow:
    """The sign-in flow over :func:`get_mfa` (``settings.MFAKIT_FLOW``)."""
    return SignInFlow(get_mfa())


def subject_for(user: AbstractBaseUser) -> Subject:
    """The mfakit subject of a Django user (``settings.MFAKIT_SUBJECT``)."""
    profile, _ = Profile.objects.get_or_create(user=user)
    username = user.get_username()
    full_name = str(getattr(user, "get_full_name", lambda: "")())
    return Subject(
        id=str(user.pk),
        username=username,
        email=str(getattr(user, "email", "")) or None,
        display_name=full_name or username,
        attributes={"mfa_opted_in": profile.mfa_opted_in},
    )


def actor_for(user: AbstractBaseUser) -> Actor:
    """The administrator behind a request: staff are the register's account admins."""
    roles = frozenset({"account_admin"}) if getattr(user, "is_staff", False) else frozenset()
    return Actor(id=f"user-{user.pk}", roles=roles)
