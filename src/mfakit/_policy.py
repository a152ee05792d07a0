"""Who must do what, when: the policy as data, and the default engine as a pure function.

``evaluate(subject, credentials, context) -> Decision`` reads no clock and touches no store:
the facade gathers the subject's credentials and the time and passes them in, so every
decision can be unit-tested, logged and explained. Rules are data too (conditions on
tenant, subject kind, attributes and action, applied in priority order).

Standards built in (SECURITY.md 24, 27, 34):

* a knowledge factor (PIN, questions, recovery codes) is never a primary factor: with a
  password it is not MFA (NIST SP 800-63B; ASVS 5 6.4.2);
* SMS is *restricted* (NIST SP 800-63B 5.1.3.3): a policy offering it must offer a
  non-restricted alternative, and decisions carry the ``"sms_restricted"`` notice;
* session presets for NIST rev 3 AAL2, NIST rev 4 AAL2 and the Australian ISM.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final, Literal, Protocol, runtime_checkable

from mfakit._models import Credential, Subject
from mfakit.exceptions import ConfigurationError, InvalidInput, InvalidType

__all__ = [
    "KNOWLEDGE_FACTOR_NAMES",
    "Context",
    "Decision",
    "DefaultPolicyEngine",
    "Policy",
    "PolicyEngine",
    "Rule",
    "SessionLimits",
    "SessionStatus",
]

Enforcement = Literal["off", "optional", "required"]
#: Factors that prove knowledge, not possession: never a second factor on their own.
KNOWLEDGE_FACTOR_NAMES: Final = frozenset({"recovery_pin", "secret_questions", "recovery_codes"})
#: Restricted authenticators in NIST SP 800-63B 5.1.3.3.
RESTRICTED_FACTOR_NAMES: Final = frozenset({"sms"})
#: Actions that change how a subject proves who they are (SECURITY.md 30, 35).
SENSITIVE_ACTIONS: Final = frozenset(
    {"change_email", "change_phone", "change_questions", "enroll", "remove_factor"}
)
_POLICY_FIELDS: Final = frozenset(
    {
        "enforcement",
        "enforce_from",
        "primary",
        "fallbacks",
        "recovery",
        "require_recovery",
        "profile_factors",
        "exempt",
        "review_details",
        "step_up_within",
        "step_up_factor",
        "session",
    }
)


@dataclasses.dataclass(frozen=True, slots=True)
class SessionStatus:
    """Whether an authenticated session may continue, and until when."""

    valid: bool
    expires_at: dt.datetime
    idle_expires_at: dt.datetime | None
    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class SessionLimits:
    """How long an MFA-verified session lives (SECURITY.md 34).

    Args:
        lifetime: Absolute limit from sign-in.
        idle_timeout: Limit since the last activity, or ``None``.
        all_factors_to_unlock: After a timeout every factor must be presented again (ISM).
    """

    lifetime: dt.timedelta
    idle_timeout: dt.timedelta | None = None
    all_factors_to_unlock: bool = False

    def __post_init__(self) -> None:
        for name in ("lifetime", "idle_timeout"):
            value = getattr(self, name)
            if value is None and name == "idle_timeout":
                continue
            if not isinstance(value, dt.timedelta) or value <= dt.timedelta(0):
                raise ConfigurationError(f"SessionLimits.{name} must be a positive timedelta")

    @classmethod
    def nist_rev3_aal2(cls) -> SessionLimits:
        """NIST SP 800-63B rev 3, AAL2: 12 hours, 30 minutes of inactivity."""
        return cls(dt.timedelta(hours=12), dt.timedelta(minutes=30))

    @classmethod
    def nist_rev4_aal2(cls) -> SessionLimits:
        """NIST SP 800-63B rev 4, AAL2: 24 hours, 1 hour of inactivity."""
        return cls(dt.timedelta(hours=24), dt.timedelta(hours=1))

    @classmethod
    def ism(cls) -> SessionLimits:
        """Australian ISM-0428: 12 hours, 15 minutes idle, all factors to unlock."""
        return cls(dt.timedelta(hours=12), dt.timedelta(minutes=15), all_factors_to_unlock=True)

    def check(
        self,
        *,
        authenticated_at: dt.datetime,
        last_activity_at: dt.datetime,
        now: dt.datetime,
    ) -> SessionStatus:
        """Whether a session authenticated at ``authenticated_at`` is still valid at ``now``."""
        expires_at = authenticated_at + self.lifetime
        idle_at = None if self.idle_timeout is None else last_activity_at + self.idle_timeout
        if now >= expires_at:
            return SessionStatus(False, expires_at, idle_at, "lifetime")
        if idle_at is not None and now >= idle_at:
            return SessionStatus(False, expires_at, idle_at, "idle")
        return SessionStatus(True, expires_at, idle_at, "valid")


@dataclasses.dataclass(frozen=True, slots=True)
class Context:
    """What is being attempted, and when (the server's time; SECURITY.md 6).

    Args:
        now: Server time of the request.
        action: ``"login"``, or a sensitive action such as ``"change_email"``,
            ``"change_phone"``, ``"change_questions"``, ``"enroll"``, ``"remove_factor"``,
            or ``"admin"``.
        password_verified_at: When the password was last checked in this session.
        mfa_verified_at: When a second factor was last verified in this session.
        reviewed_details: The subject has reviewed their details (register deployment).
        facts: Further request facts for host rules (never secrets).
    """

    now: dt.datetime
    action: str = "login"
    password_verified_at: dt.datetime | None = None
    mfa_verified_at: dt.datetime | None = None
    reviewed_details: bool = False
    facts: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.now, dt.datetime) or self.now.tzinfo is None:
            raise InvalidType("Context.now must be an aware datetime")
        if not isinstance(self.action, str) or not self.action or len(self.action) > 64:
            raise InvalidInput("Context.action must be a short non-empty str")
        for name in ("password_verified_at", "mfa_verified_at"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, dt.datetime) or value.tzinfo is None):
                raise InvalidType(f"Context.{name} must be None or an aware datetime")
        object.__setattr__(self, "facts", MappingProxyType(dict(self.facts)))


@dataclasses.dataclass(frozen=True, slots=True)
class Rule:
    """A conditional override of policy settings: data, applied in priority order.

    Args:
        name: For reasons and logs.
        set: Policy fields to override, e.g. ``{"enforcement": "off"}``.
        priority: Lower first; later rules override earlier ones.
        tenants: Applies only to these tenants (``None``: any).
        kinds: Applies only to these subject kinds (``None``: any).
        actions: Applies only to these actions (``None``: any).
        attributes: Applies only when each subject attribute equals the value given.
    """

    name: str
    set: Mapping[str, Any]
    priority: int = 0
    tenants: frozenset[str] | None = None
    kinds: frozenset[str] | None = None
    actions: frozenset[str] | None = None
    attributes: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.set) - _POLICY_FIELDS
        if unknown:
            raise ConfigurationError(f"rule {self.name!r} sets unknown fields {sorted(unknown)}")
        for name in ("tenants", "kinds", "actions"):
            value = getattr(self, name)
            if isinstance(value, str):
                # frozenset("t1") would be {"t", "1"}: a rule that silently never matches.
                raise ConfigurationError(f"Rule.{name} must be a collection of str, not a str")
            if value is not None:
                object.__setattr__(self, name, frozenset(value))
        object.__setattr__(self, "set", MappingProxyType(dict(self.set)))
        object.__setattr__(self, "attributes", MappingProxyType(dict(self.attributes)))

    def applies(self, subject: Subject, context: Context) -> bool:
        """Whether this rule's conditions hold."""
        return (
            (self.tenants is None or subject.tenant in self.tenants)
            and (self.kinds is None or subject.kind in self.kinds)
            and (self.actions is None or context.action in self.actions)
            and all(subject.attributes.get(k) == v for k, v in self.attributes.items())
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Policy:
    """The MFA policy of an application (or one tenant), as data.

    Args:
        enforcement: ``"off"``, ``"optional"`` (subjects may opt in) or ``"required"``.
        enforce_from: With ``"required"``: before this moment MFA is only optional (a
            grace period for opting in, as the register's three months).
        primary: Second factors in order of preference (possession factors only).
        fallbacks: Offered when the primary cannot be used right now (code not received).
        recovery: Offered when the device is lost; afterwards the subject must enrol again.
        require_recovery: The subject must set up one recovery method too.
        profile_factors: Factors usable without enrolment, from the subject's profile:
            ``("email",)`` when codes go to ``Subject.email`` (the register).
        exempt: Subject kinds exempt from MFA (``{"service"}``: machine-to-machine users),
            or a host predicate ``(subject) -> bool``.
        review_details: Subjects must review their details before MFA applies.
        step_up_within: How recent the password (and, with ``step_up_factor``, the
            second factor) must be for a sensitive action.
        step_up_factor: With MFA on, a sensitive action also needs a recent second factor
            (the default, SECURITY.md 35); ``False`` asks for the password only, as the
            register does.
        session: Session limits.
        rules: Conditional overrides (per tenant, kind, attribute or action).

    Raises:
        ConfigurationError: A knowledge factor as primary (never MFA), SMS without a
            non-restricted alternative (NIST SP 800-63B 5.1.3.3), or malformed settings.
    """

    enforcement: Enforcement = "required"
    enforce_from: dt.datetime | None = None
    primary: tuple[str, ...] = ("totp",)
    fallbacks: tuple[str, ...] = ()
    recovery: tuple[str, ...] = ()
    require_recovery: bool = False
    profile_factors: tuple[str, ...] = ()
    exempt: frozenset[str] | Callable[[Subject], bool] = frozenset({"service"})
    review_details: bool = False
    step_up_within: dt.timedelta = dt.timedelta(minutes=10)
    step_up_factor: bool = True
    session: SessionLimits = dataclasses.field(default_factory=SessionLimits.nist_rev4_aal2)
    rules: tuple[Rule, ...] = ()

    def __post_init__(self) -> None:
        if self.enforcement not in ("off", "optional", "required"):
            raise ConfigurationError("enforcement must be 'off', 'optional' or 'required'")
        for name in ("primary", "fallbacks", "recovery", "profile_factors"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise ConfigurationError(f"Policy.{name} must be a tuple of factor names")
            object.__setattr__(self, name, tuple(value))
        if not self.primary:
            raise ConfigurationError("Policy.primary needs at least one factor")
        knowledge = KNOWLEDGE_FACTOR_NAMES.intersection(self.primary)
        if knowledge:
            raise ConfigurationError(
                f"{sorted(knowledge)} cannot be primary: a password plus a knowledge factor "
                "is never MFA (NIST SP 800-63B); use them as fallbacks or recovery"
            )
        restricted = RESTRICTED_FACTOR_NAMES.intersection(self.primary)
        if restricted and not set(self.primary) - RESTRICTED_FACTOR_NAMES:
            raise ConfigurationError(
                "SMS is a restricted authenticator (NIST SP 800-63B 5.1.3.3): offer a "
                "non-restricted alternative such as 'totp' in primary as well"
            )
        if isinstance(self.exempt, str):
            raise ConfigurationError("Policy.exempt must be a set of kinds (or a callable)")
        if not isinstance(self.exempt, frozenset) and not callable(self.exempt):
            object.__setattr__(self, "exempt", frozenset(self.exempt))
        if self.enforce_from is not None and self.enforce_from.tzinfo is None:
            raise ConfigurationError("enforce_from must be an aware datetime")
        object.__setattr__(self, "rules", tuple(sorted(self.rules, key=lambda r: r.priority)))
        for rule in self.rules:
            # Check what each rule would produce now, not at the first matching sign-in.
            dataclasses.replace(self, **dict(rule.set), rules=())

    # presets ---------------------------------------------------------------------------
    @classmethod
    def practice_suite(cls, **overrides: Any) -> Policy:
        """The practice-suite deployment: authenticator app or SMS, a recovery PIN,
        immediate enforcement once enabled, machine-to-machine users exempt, 24-hour
        sessions with a 15-minute inactivity timeout."""
        settings: dict[str, Any] = {
            "enforcement": "required",
            "primary": ("totp", "sms"),
            "recovery": ("recovery_pin",),
            "require_recovery": True,
            "exempt": frozenset({"service"}),
            "session": SessionLimits(dt.timedelta(hours=24), dt.timedelta(minutes=15)),
        }
        settings.update(overrides)
        return cls(**settings)

    @classmethod
    def register(cls, *, launched_at: dt.datetime, **overrides: Any) -> Policy:
        """The register deployment: e-mail codes, secret questions as the fallback, a
        three-month opt-in grace period from ``launched_at``, then mandatory for all;
        users review their details before MFA applies."""
        if not isinstance(launched_at, dt.datetime) or launched_at.tzinfo is None:
            raise ConfigurationError("launched_at must be an aware datetime")
        settings: dict[str, Any] = {
            "enforcement": "required",
            "enforce_from": _add_months(launched_at, 3),
            "primary": ("email",),
            "profile_factors": ("email",),
            "fallbacks": ("secret_questions",),
            "exempt": frozenset(),
            "review_details": True,
            # "select Edit, enter your password, update the email address": password only.
            "step_up_factor": False,
        }
        settings.update(overrides)
        return cls(**settings)

    def effective(self, subject: Subject, context: Context) -> tuple[Policy, tuple[str, ...]]:
        """This policy with the applicable rules applied, and the names of those rules."""
        policy = self
        applied: list[str] = []
        for rule in self.rules:
            if rule.applies(subject, context):
                policy = dataclasses.replace(policy, **dict(rule.set), rules=())
                applied.append(rule.name)
        return policy, tuple(applied)


def _add_months(when: dt.datetime, months: int) -> dt.datetime:
    """Calendar months, clamped to the end of a shorter month (31 Nov -> 30 Nov)."""
    month_index = when.month - 1 + months
    year, month = when.year + month_index // 12, month_index % 12 + 1
    for day in (when.day, 30, 29, 28):
        try:
            return when.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    raise AssertionError("unreachable")  # pragma: no cover


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """What the subject must do now, and why.

    Attributes:
        required: A verified second factor is needed before the session is complete.
        optional: MFA is not required, but the subject may opt in (enrol a factor, or
            the host sets ``Subject.attributes["mfa_opted_in"] = True``).
        methods: Primary factors the subject can use now, in order of preference
            (enrolled ones, and profile factors such as the profile e-mail address).
        enroll: When non-empty, the subject must first enrol one of these.
        enroll_recovery: When non-empty, the subject must also enrol one of these.
        fallbacks: Fallbacks the subject can use now ("code did not arrive").
        recovery: Recovery factors the subject can use now ("device lost").
        review_details: The subject must review their details first.
        grace_until: End of the opt-in period, if one applies now.
        step_up: A sensitive action: the password must be entered again and, with MFA
            on, a second factor verified within ``step_up_within``.
        step_up_satisfied: The context already satisfies the step-up.
        session: Session limits for the resulting session.
        notices: Messages for the host to show (``"sms_restricted"``).
        reasons: Why, in plain words, in the order the engine decided.
    """

    required: bool
    optional: bool
    methods: tuple[str, ...]
    enroll: tuple[str, ...]
    enroll_recovery: tuple[str, ...]
    fallbacks: tuple[str, ...]
    recovery: tuple[str, ...]
    review_details: bool
    grace_until: dt.datetime | None
    step_up: bool
    step_up_satisfied: bool
    session: SessionLimits
    notices: tuple[str, ...]
    reasons: tuple[str, ...]

    def explain(self) -> str:
        """A multi-line, human-readable account of the decision, for logs and debugging."""
        lines = [
            f"MFA required: {'yes' if self.required else 'no'}"
            + (" (optional: the subject may opt in)" if self.optional else ""),
        ]
        if self.review_details:
            lines.append("first: review details")
        if self.enroll:
            lines.append(f"enrol one of: {', '.join(self.enroll)}")
        if self.enroll_recovery:
            lines.append(f"enrol a recovery method: {', '.join(self.enroll_recovery)}")
        if self.methods:
            lines.append(f"verify with: {', '.join(self.methods)}")
        if self.fallbacks:
            lines.append(f"fallbacks: {', '.join(self.fallbacks)}")
        if self.recovery:
            lines.append(f"recovery: {', '.join(self.recovery)}")
        if self.step_up:
            done = "satisfied" if self.step_up_satisfied else "needed"
            lines.append(f"step-up for a sensitive action: {done}")
        if self.grace_until is not None:
            lines.append(f"grace period until {self.grace_until.isoformat()}")
        lines.extend(f"notice: {n}" for n in self.notices)
        lines.extend(f"because: {r}" for r in self.reasons)
        return "\n".join(lines)


@runtime_checkable
class PolicyEngine(Protocol):
    """Decides what a subject must do. Must be pure: no I/O, no clock (use ``context``)."""

    def evaluate(
        self, subject: Subject, credentials: Sequence[Credential], context: Context
    ) -> Decision:
        """The decision for ``subject`` holding ``credentials`` in ``context``."""
        ...


def _recent(when: dt.datetime | None, now: dt.datetime, policy: Policy) -> bool:
    return when is not None and dt.timedelta(0) <= now - when <= policy.step_up_within


class DefaultPolicyEngine:
    """The engine for a :class:`Policy`.

    Args:
        policy: The policy (default: ``Policy()``: TOTP required, services exempt).
    """

    def __init__(self, policy: Policy | None = None) -> None:
        if policy is not None and not isinstance(policy, Policy):
            raise ConfigurationError("policy must be a mfakit.Policy")
        self.policy = policy if policy is not None else Policy()

    def __repr__(self) -> str:
        return f"DefaultPolicyEngine({self.policy.enforcement}, primary={self.policy.primary})"

    def evaluate(
        self, subject: Subject, credentials: Sequence[Credential], context: Context
    ) -> Decision:
        """Apply the rules, then decide; every branch records its reason."""
        policy, applied = self.policy.effective(subject, context)
        reasons = [f"rule {name!r} applies" for name in applied]
        notices: list[str] = []
        enrolled = {c.factor for c in credentials if c.active}
        active = set(enrolled)
        if "email" in policy.profile_factors and subject.email:
            active.add("email")

        exempt = (
            policy.exempt(subject) if callable(policy.exempt) else subject.kind in policy.exempt
        )
        grace_until: dt.datetime | None = None
        if exempt:
            mode: Enforcement = "off"
            reasons.append(f"subjects of kind {subject.kind!r} are exempt")
        elif (
            policy.enforcement == "required"
            and policy.enforce_from is not None
            and (context.now < policy.enforce_from)
        ):
            mode = "optional"
            grace_until = policy.enforce_from
            reasons.append(f"grace period: MFA becomes mandatory at {grace_until.isoformat()}")
        else:
            mode = policy.enforcement
            reasons.append(f"enforcement is {mode!r}")

        has_primary = [name for name in policy.primary if name in active]
        # Opting in is a choice: an enrolled primary factor, or the host's flag. A profile
        # address alone does not opt a subject in during a grace period.
        opted_in = bool(enrolled.intersection(policy.primary)) or (
            subject.attributes.get("mfa_opted_in") is True
        )
        required = mode == "required" or (mode == "optional" and opted_in)
        if mode == "optional" and opted_in:
            reasons.append("the subject opted in")
        if RESTRICTED_FACTOR_NAMES.intersection(policy.primary) and mode != "off":
            notices.append("sms_restricted")

        enroll: tuple[str, ...] = ()
        enroll_recovery: tuple[str, ...] = ()
        if required and not has_primary:
            enroll = policy.primary
            reasons.append("no primary factor enrolled yet")
        if required and policy.require_recovery and not active.intersection(policy.recovery):
            enroll_recovery = policy.recovery
            reasons.append("a recovery method must be set up")

        review = bool(policy.review_details and mode != "off" and not context.reviewed_details)
        if review:
            reasons.append("details must be reviewed before MFA applies")

        step_up = context.action in SENSITIVE_ACTIONS
        satisfied = False
        if step_up:
            password_fresh = _recent(context.password_verified_at, context.now, policy)
            # A subject with no second factor yet (enrolling the first one) can only prove
            # the password; a future time never counts as recent.
            factor_fresh = (
                not required
                or not policy.step_up_factor
                or not has_primary
                or _recent(context.mfa_verified_at, context.now, policy)
            )
            satisfied = password_fresh and factor_fresh
            reasons.append(
                f"{context.action} is sensitive: password again"
                + (" and a fresh second factor" if required and policy.step_up_factor else "")
            )

        return Decision(
            required=required,
            optional=mode == "optional" and not opted_in,
            methods=tuple(has_primary) if required else (),
            enroll=enroll,
            enroll_recovery=enroll_recovery,
            fallbacks=tuple(f for f in policy.fallbacks if f in active) if required else (),
            recovery=tuple(f for f in policy.recovery if f in active) if required else (),
            review_details=review,
            grace_until=grace_until,
            step_up=step_up,
            step_up_satisfied=satisfied,
            session=policy.session,
            notices=tuple(notices),
            reasons=tuple(reasons),
        )
