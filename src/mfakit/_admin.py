"""Administration: reset, unlock, remove, view questions, report; and self-service reset.

Both deployments in ``shared/reference/`` need it. In the practice suite "a role-holder
resets a user's MFA, who then enrols again", and "users may reset their own MFA when their
phone changes". In the register, administrators "see their questions (never the answers)"
and run "the user management report".

Every administrative method works in the same order:

1. validate its arguments (a typed :class:`~mfakit.exceptions.InvalidInput` and nothing
   else: no event, no change);
2. ask the host's :class:`Authorizer` whether the :class:`Actor` may do it. Anything but
   ``True``, or an exception from the authorizer, is a refusal: :class:`NotAuthorized` is
   raised, nothing changes, and an ``ADMIN_DENIED`` event (reason ``"NotAuthorized"``) names the
   actor (SECURITY.md 37);
3. act, and audit the change with events that name the actor and carry no secret.

The default authorizer is :class:`DenyAll`: until the host says who may do what, no one may.
A subject resetting their own factor (:meth:`AdminMixin.reset_own`) is not an administrative
action: it needs a fresh password instead (SECURITY.md 30, 35).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import logging
import re
from collections.abc import Collection, Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

from mfakit import _throttle
from mfakit._models import Credential, EventType, LockState, Subject, validate_actor, validate_id
from mfakit._parts import MAX_WRITE_RETRIES, FacadeParts
from mfakit._policy import Context, Decision
from mfakit.exceptions import (
    ConcurrencyConflict,
    ConfigurationError,
    CredentialNotFound,
    InvalidInput,
    InvalidType,
    NotAuthorized,
    StepUpRequired,
)
from mfakit.factors.secret_questions import SecretQuestions

__all__ = [
    "ADMIN_ACTIONS",
    "REPORT_COLUMNS",
    "Actor",
    "AdminMixin",
    "Authorizer",
    "DenyAll",
    "NotAuthorized",
    "ReportRow",
    "RoleAuthorizer",
    "StepUpRequired",
]

_log = logging.getLogger("mfakit")

#: The actions an :class:`Authorizer` is asked about.
ADMIN_ACTIONS: Final = frozenset(
    {"reset", "unlock", "remove_credential", "view_questions", "report"}
)
_MAX_TEXT: Final = 255
# As for Subject fields: C0 and C1 controls and the Unicode line separators, which could
# forge lines in a text audit log.
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# OWASP "CSV Injection": a cell starting with one of these is a formula to a spreadsheet.
_FORMULA_TRIGGERS: Final = ("=", "+", "-", "@", "\t", "\r", "\n")


def _check_text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidType(f"{what} must be str, not {type(value).__name__}")
    if not value.strip() or len(value) > _MAX_TEXT or _CONTROL.search(value):
        raise InvalidInput(f"{what} must be 1 to {_MAX_TEXT} printable characters")
    return value


def _check_tenant(value: object, what: str) -> str | None:
    return None if value is None else _check_text(value, what)


@dataclasses.dataclass(frozen=True, slots=True)
class Actor:
    """Who performs an administrative action: the host's signed-in administrator.

    The host builds it from its own user and role model; mfakit records ``id`` in every
    audit event and passes the whole actor to the :class:`Authorizer`.

    Args:
        id: The administrator's identifier (1 to 255 printable characters).
        tenant: The organisation the administrator belongs to, or ``None`` (a
            single-tenant host, or the host's own support staff).
        roles: The roles the administrator holds; any iterable of ``str`` (not a bare
            ``str``), kept as a ``frozenset``.

    Raises:
        InvalidType: Wrong types (including a bare ``str`` for ``roles``).
        InvalidInput: Blank, oversized values or control characters.
    """

    id: str
    tenant: str | None = None
    roles: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        validate_actor(self.id)
        _check_tenant(self.tenant, "Actor.tenant")
        roles: object = self.roles
        if isinstance(roles, (str, bytes)) or not isinstance(roles, Iterable):
            raise InvalidType("Actor.roles must be a collection of str, not a single str")
        checked = frozenset(_check_text(role, "an Actor role") for role in roles)
        object.__setattr__(self, "roles", checked)


@runtime_checkable
class Authorizer(Protocol):
    """Decides whether an :class:`Actor` may perform an administrative action.

    The host implements it over its own role model (or uses :class:`RoleAuthorizer`).
    It must be side-effect free and fast: it is asked once per action, and for a report
    once more per reported subject. Only a return value of exactly ``True`` allows; any
    other value, or an exception, refuses.
    """

    def allowed(
        self, actor: Actor, action: str, subject: Subject | None, tenant: str | None
    ) -> bool:
        """Whether ``actor`` may perform ``action``.

        Args:
            actor: Who asks.
            action: One of :data:`ADMIN_ACTIONS`: ``"reset"``, ``"unlock"``,
                ``"remove_credential"``, ``"view_questions"`` or ``"report"``.
            subject: The subject acted on; ``None`` for the report as a whole.
            tenant: The tenant acted in: the subject's tenant, or the tenant reported on.

        Returns:
            ``True`` to allow; anything else refuses.
        """
        ...


class DenyAll:
    """The default :class:`Authorizer`: every administrative action is refused."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "DenyAll()"

    def allowed(
        self, actor: Actor, action: str, subject: Subject | None, tenant: str | None
    ) -> bool:
        """Always ``False``."""
        return False


class RoleAuthorizer:
    """An :class:`Authorizer` from a table of action -> roles allowed.

    Example (the practice suite: holders of ``"user_admin"`` reset and unlock the users of
    their own practice)::

        RoleAuthorizer({"reset": {"user_admin"}, "unlock": {"user_admin"}})

    Args:
        roles: Action -> the roles that may perform it. Actions left out are refused to
            everyone. Keys must be in :data:`ADMIN_ACTIONS`, so a typo fails at start-up
            instead of silently refusing (or allowing) at run time.
        same_tenant: The actor's tenant must equal the subject's tenant and the tenant
            acted in (``None`` only matches ``None``). Turn it off only for a host's own
            cross-tenant support staff.

    Raises:
        ConfigurationError: Unknown actions, or roles that are not a collection of
            non-empty ``str`` (a bare ``"admin"`` would otherwise mean the roles
            ``"a"``, ``"d"``, ...).
    """

    __slots__ = ("roles", "same_tenant")

    def __init__(self, roles: Mapping[str, Collection[str]], *, same_tenant: bool = True) -> None:
        if not isinstance(roles, Mapping):
            raise ConfigurationError("roles must be a mapping of action -> roles")
        table: dict[str, frozenset[str]] = {}
        for action, allowed in roles.items():
            if action not in ADMIN_ACTIONS:
                raise ConfigurationError(
                    f"unknown admin action {action!r}; expected one of {sorted(ADMIN_ACTIONS)}"
                )
            if isinstance(allowed, (str, bytes)) or not isinstance(allowed, Collection):
                raise ConfigurationError(
                    f"roles for {action!r} must be a collection of str, not a single str"
                )
            if not all(isinstance(r, str) and r for r in allowed):
                raise ConfigurationError(f"roles for {action!r} must be non-empty str")
            table[action] = frozenset(allowed)
        if not isinstance(same_tenant, bool):
            raise ConfigurationError("same_tenant must be a bool")
        self.roles: Mapping[str, frozenset[str]] = MappingProxyType(table)
        self.same_tenant = same_tenant

    def __repr__(self) -> str:
        table = {action: sorted(roles) for action, roles in sorted(self.roles.items())}
        return f"RoleAuthorizer({table}, same_tenant={self.same_tenant})"

    def allowed(
        self, actor: Actor, action: str, subject: Subject | None, tenant: str | None
    ) -> bool:
        """``True`` if the actor holds a role allowed for ``action`` (in the same tenant)."""
        if not actor.roles & self.roles.get(action, frozenset()):
            return False
        if self.same_tenant:
            if subject is not None and subject.tenant != actor.tenant:
                return False
            if tenant != actor.tenant:
                return False
        return True


@dataclasses.dataclass(frozen=True, slots=True)
class ReportRow:
    """One subject's line in the user management report.

    Attributes:
        subject_id: The host's id for the subject.
        username: Login name.
        email: Profile e-mail address (where the register sends codes).
        display_name: Name.
        tenant: Tenant.
        factors: Names of the factors with an active credential, in enrolment order,
            each once.
        pending: Names of factors with an enrolment started but not confirmed (and not
            lapsed).
        last_used_at: Latest successful use of any credential, or ``None``.
        locked: Verification is refused now (a temporary lock in force, or suspended).
        suspended: Locked until an administrator unlocks.
        locked_until: End of the temporary lock in force, or ``None``.
        failures: Consecutive failed attempts.
        questions_need_update: The subject's secret questions are missing or break the
            current rules; ``False`` when secret questions are not configured.
        mfa_required: The policy requires a second factor at sign-in now.
    """

    subject_id: str
    username: str | None
    email: str | None
    display_name: str | None
    tenant: str | None
    factors: tuple[str, ...]
    pending: tuple[str, ...]
    last_used_at: dt.datetime | None
    locked: bool
    suspended: bool
    locked_until: dt.datetime | None
    failures: int
    questions_need_update: bool
    mfa_required: bool


#: The CSV header of :meth:`AdminMixin.report_csv`: the fields of :class:`ReportRow`.
REPORT_COLUMNS: Final = tuple(f.name for f in dataclasses.fields(ReportRow))


def _csv_cell(value: object) -> str:
    """One report value as CSV text, neutralised against formula injection.

    ``None`` is empty, booleans ``true``/``false``, datetimes ISO 8601, tuples joined by
    ``;``. A cell a spreadsheet would run as a formula (first character, after any
    spaces, one of ``= + - @``, tab, CR or LF) gets a leading ``'`` (OWASP "CSV
    Injection").
    """
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dt.datetime):
        text = value.isoformat()
    elif isinstance(value, tuple):
        text = ";".join(str(v) for v in value)
    else:
        text = str(value)
    if text.lstrip(" ").startswith(_FORMULA_TRIGGERS):
        text = "'" + text
    return text


class AdminMixin(FacadeParts):
    """Administrative and self-service reset operations of :class:`~mfakit.MFA`.

    Attributes:
        authorizer: Decides who may do what; :class:`DenyAll` unless the host sets one.
    """

    #: Fail closed until the host configures who may do what.
    authorizer: Authorizer = DenyAll()

    if TYPE_CHECKING:
        # Provided by MFA and KnowledgeMixin (see _parts.FacadeParts for the others).
        def evaluate(self, subject: Subject, context: Context | None = None) -> Decision: ...
        def unlock(self, subject: Subject, *, actor: str) -> LockState: ...
        def credentials(
            self, subject: Subject, *, include_pending: bool = False
        ) -> list[Credential]: ...
        def secret_questions(self, subject: Subject) -> list[str]: ...
        def questions_need_update(self, subject: Subject) -> bool: ...

    # helpers -----------------------------------------------------------------------------
    @staticmethod
    def _actor(actor: object) -> Actor:
        if not isinstance(actor, Actor):
            raise InvalidType(f"actor must be a mfakit Actor, not {type(actor).__name__}")
        return actor

    def _authorize(
        self,
        actor: Actor,
        action: str,
        subject: Subject | None,
        tenant: str | None,
        **fields: object,
    ) -> None:
        """Ask the authorizer; on anything but ``True`` audit the refusal and raise."""
        authorizer = self.authorizer
        if not isinstance(authorizer, Authorizer):
            raise ConfigurationError("authorizer must implement allowed(actor, action, ...)")
        try:
            verdict = authorizer.allowed(actor, action, subject, tenant)
        except Exception:  # a broken authorizer refuses (fail closed) and is logged
            _log.exception("mfakit authorizer failed for %s", action)
            verdict = False
        if verdict is True:
            return
        detail: dict[str, object] = {"action": action}
        if subject is None:
            detail["tenant"] = tenant
        self._emit(
            EventType.ADMIN_DENIED,
            subject,
            actor=actor.id,
            reason=NotAuthorized.__name__,
            detail=detail,
            **fields,
        )
        raise NotAuthorized(f"actor {actor.id!r} may not {action}", action=action)

    def _remove_as(
        self, subject: Subject, credential: Credential, *, actor: str, reason: str
    ) -> Credential | None:
        """Delete one credential with a conditional write and audit it.

        Returns the version deleted, or ``None`` if it vanished (or changed owner) meanwhile.
        """
        store = self.store
        current = credential
        for _ in range(MAX_WRITE_RETRIES):
            if store.delete_credential(current.id, version=current.version):
                self._emit(
                    EventType.CREDENTIAL_REMOVED,
                    subject,
                    factor=current.factor,
                    credential_id=current.id,
                    actor=actor,
                    reason=reason,
                    detail={"status": current.status.value},
                )
                return current
            fresh = store.get_credential(current.id)
            if fresh is None or fresh.subject_id != subject.id:
                return None
            current = fresh
        raise ConcurrencyConflict("could not remove the credential")  # pragma: no cover

    def _remove_all(self, subject: Subject, factor: str | None, *, actor: str, reason: str) -> int:
        """Remove every credential of the subject (of ``factor`` only, if given).

        Repeats until none is left, so a credential enrolled while this runs goes too.
        """
        removed = 0
        for _ in range(MAX_WRITE_RETRIES):
            doomed = [
                c
                for c in self.store.list_credentials(subject.id)
                if c.subject_id == subject.id and (factor is None or c.factor == factor)
            ]
            if not doomed:
                return removed
            for credential in doomed:
                if self._remove_as(subject, credential, actor=actor, reason=reason):
                    removed += 1
        raise ConcurrencyConflict("credentials kept appearing during the reset")

    # administration ----------------------------------------------------------------------
    def admin_reset(self, actor: Actor, subject: Subject) -> int:
        """Reset a subject's MFA: they must enrol again at their next sign-in.

        Removes every credential of the subject, pending enrolments included (one
        ``CREDENTIAL_REMOVED`` event each, reason ``"admin_reset"``), then clears the
        failure count and any lock or suspension (a ``RESET`` event, reason
        ``"admin_reset"``, detail ``{"removed": n}``). Both name the actor. Open
        challenges of removed credentials can no longer be verified.

        Args:
            actor: The administrator; needs the ``"reset"`` action.
            subject: Whose MFA to reset.

        Returns:
            How many credentials were removed.

        Raises:
            InvalidType, InvalidInput: Malformed ``actor`` or ``subject``.
            NotAuthorized: The authorizer refused; nothing was changed.
        """
        actor = self._actor(actor)
        subject = self._subject(subject)
        self._authorize(actor, "reset", subject, subject.tenant)
        removed = self._remove_all(subject, None, actor=actor.id, reason="admin_reset")
        written = self._update(
            lambda: self.store.get_lock_state(subject.id),
            _throttle.reset,
            self.store.put_lock_state,
        )
        if written is None:  # pragma: no cover - get_lock_state never returns None
            raise ConcurrencyConflict("store returned no lock state")
        self._emit(
            EventType.RESET,
            subject,
            actor=actor.id,
            reason="admin_reset",
            detail={"removed": removed},
        )
        return removed

    def admin_unlock(self, actor: Actor, subject: Subject) -> LockState:
        """Clear a subject's failures and lock, including a suspension.

        Emits ``UNLOCKED`` naming the actor.

        Args:
            actor: The administrator; needs the ``"unlock"`` action.
            subject: Whom to unlock.

        Returns:
            The subject's new (clean) lock state.

        Raises:
            InvalidType, InvalidInput: Malformed ``actor`` or ``subject``.
            NotAuthorized: The authorizer refused; nothing was changed.
        """
        actor = self._actor(actor)
        subject = self._subject(subject)
        self._authorize(actor, "unlock", subject, subject.tenant)
        return self.unlock(subject, actor=actor.id)

    def admin_remove(self, actor: Actor, subject: Subject, credential_id: str) -> Credential:
        """Remove one credential of a subject (a lost phone, an old authenticator app).

        Authorisation comes before the lookup, so a refused actor learns nothing about
        which credential ids exist. Emits ``CREDENTIAL_REMOVED`` naming the actor, reason
        ``"admin_remove"``.

        Args:
            actor: The administrator; needs the ``"remove_credential"`` action.
            subject: The credential's owner.
            credential_id: The credential to remove.

        Returns:
            The credential as it was when removed.

        Raises:
            InvalidType, InvalidInput: Malformed arguments.
            NotAuthorized: The authorizer refused; nothing was changed.
            CredentialNotFound: No such credential of this subject (another subject's
                included); nothing was changed.
        """
        actor = self._actor(actor)
        subject = self._subject(subject)
        validate_id(credential_id, "credential_id")
        self._authorize(
            actor, "remove_credential", subject, subject.tenant, credential_id=credential_id
        )
        credential = self._owned_credential(subject, credential_id)
        removed = self._remove_as(subject, credential, actor=actor.id, reason="admin_remove")
        if removed is None:  # removed by someone else meanwhile: as for an unknown id
            raise CredentialNotFound("no such credential for this subject")
        return removed

    def admin_questions(self, actor: Actor, subject: Subject) -> list[str]:
        """The texts of a subject's secret questions, so an administrator can help them.

        Never the answers: they are argon2id hashes that nobody can read back
        (SECURITY.md 21; unlike the register, which shows them). The viewing is audited:
        a ``POLICY_DECIDED`` event with reason ``"admin_allowed"`` naming the actor and
        ``detail["action"] == "view_questions"``.

        Args:
            actor: The administrator; needs the ``"view_questions"`` action.
            subject: Whose questions.

        Returns:
            The question texts in the subject's order; ``[]`` without a set.

        Raises:
            InvalidType, InvalidInput: Malformed ``actor`` or ``subject``.
            NotAuthorized: The authorizer refused.
            ConfigurationError: Secret questions are not configured.
        """
        actor = self._actor(actor)
        subject = self._subject(subject)
        self._authorize(actor, "view_questions", subject, subject.tenant)
        texts = self.secret_questions(subject)
        self._emit(
            EventType.POLICY_DECIDED,
            subject,
            factor="secret_questions",
            actor=actor.id,
            reason="admin_allowed",
            detail={"action": "view_questions", "count": len(texts)},
        )
        return texts

    def report(
        self, actor: Actor, tenant: str | None, subjects: Iterable[Subject]
    ) -> list[ReportRow]:
        """The user management report: who has enrolled what, who is locked.

        The host owns its users, so it passes them in. Subjects of another tenant than
        ``tenant`` are skipped, and so is any subject the authorizer refuses for
        ``"report"`` (asked once per subject, after once for the whole report); a
        subject listed twice is reported once. Computing ``mfa_required`` evaluates the
        policy, which emits a ``POLICY_DECIDED`` event per subject; the report itself is
        audited with a ``POLICY_DECIDED`` event, reason ``"admin_allowed"``, naming the
        actor, with ``detail`` holding the action, tenant, rows and skipped count.

        Args:
            actor: The administrator; needs the ``"report"`` action for ``tenant``.
            tenant: The tenant reported on (``None`` for a single-tenant host).
            subjects: The host's users to report on.

        Returns:
            One row per reported subject, in the order given.

        Raises:
            InvalidType, InvalidInput: Malformed arguments (checked before anything else).
            NotAuthorized: The authorizer refused the report.
        """
        actor = self._actor(actor)
        tenant = _check_tenant(tenant, "tenant")
        if isinstance(subjects, (str, bytes)) or not isinstance(subjects, Iterable):
            raise InvalidType("subjects must be an iterable of mfakit.Subject")
        given = [self._subject(s) for s in subjects]
        self._authorize(actor, "report", None, tenant)
        authorizer = self.authorizer
        rows: list[ReportRow] = []
        seen: set[str] = set()
        skipped = 0
        questions = self._questions_configured()
        for subject in given:
            if subject.id in seen:
                continue
            seen.add(subject.id)
            if subject.tenant != tenant or not self._quietly_allowed(
                authorizer, actor, subject, tenant
            ):
                skipped += 1
                continue
            rows.append(self._row(subject, questions=questions))
        self._emit(
            EventType.POLICY_DECIDED,
            None,
            actor=actor.id,
            reason="admin_allowed",
            detail={"action": "report", "tenant": tenant, "rows": len(rows), "skipped": skipped},
        )
        return rows

    def report_csv(self, actor: Actor, tenant: str | None, subjects: Iterable[Subject]) -> str:
        """:meth:`report` as CSV text, safe to open in a spreadsheet.

        The header is :data:`REPORT_COLUMNS`; every cell is quoted; ``None`` is empty,
        booleans are ``true``/``false``, datetimes ISO 8601, factor lists joined by
        ``;``. A cell that a spreadsheet would evaluate as a formula (starting with
        ``=``, ``+``, ``-``, ``@``, tab or CR) is prefixed with ``'`` (OWASP "CSV
        Injection"): a display name such as ``=HYPERLINK(...)`` stays text.

        Args:
            actor: As for :meth:`report`.
            tenant: As for :meth:`report`.
            subjects: As for :meth:`report`.

        Returns:
            The CSV document, lines ending in CRLF (RFC 4180).

        Raises:
            InvalidType, InvalidInput, NotAuthorized: As for :meth:`report`.
        """
        import csv  # only reports need it: kept off ``import mfakit``

        rows = self.report(actor, tenant, subjects)
        out = io.StringIO()
        writer = csv.writer(out, quoting=csv.QUOTE_ALL)
        writer.writerow(REPORT_COLUMNS)
        for row in rows:
            writer.writerow([_csv_cell(getattr(row, name)) for name in REPORT_COLUMNS])
        return out.getvalue()

    def _questions_configured(self) -> bool:
        try:
            return isinstance(self.factor("secret_questions"), SecretQuestions)
        except ConfigurationError:
            return False

    @staticmethod
    def _quietly_allowed(
        authorizer: Authorizer, actor: Actor, subject: Subject, tenant: str | None
    ) -> bool:
        try:
            return authorizer.allowed(actor, "report", subject, tenant) is True
        except Exception:  # fail closed, like _authorize
            _log.exception("mfakit authorizer failed for report")
            return False

    def _row(self, subject: Subject, *, questions: bool) -> ReportRow:
        now = self.clock.now()
        credentials = self.store.list_credentials(subject.id)
        factors = tuple(dict.fromkeys(c.factor for c in credentials if c.active))
        pending = tuple(
            dict.fromkeys(
                c.factor
                for c in credentials
                if not c.active and (c.expires_at is None or now < c.expires_at)
            )
        )
        used = [c.last_used_at for c in credentials if c.last_used_at is not None]
        state = self.store.get_lock_state(subject.id)
        temporary = state.locked_until is not None and now < state.locked_until
        return ReportRow(
            subject_id=subject.id,
            username=subject.username,
            email=subject.email,
            display_name=subject.display_name,
            tenant=subject.tenant,
            factors=factors,
            pending=pending,
            last_used_at=max(used) if used else None,
            locked=_throttle.is_locked(state, now),
            suspended=state.suspended,
            locked_until=state.locked_until if temporary else None,
            failures=state.failures,
            questions_need_update=questions and self.questions_need_update(subject),
            mfa_required=self.evaluate(subject).required,
        )

    # self-service ------------------------------------------------------------------------
    def reset_own(self, subject: Subject, factor: str, *, context: Context) -> int:
        """The subject removes their own credentials of one factor (their phone changed).

        Removing a factor is sensitive (SECURITY.md 30, 35): the policy is evaluated for
        the action ``"remove_factor"`` (whatever ``context.action`` says), and the
        step-up it demands must be satisfied: the password entered again within the
        policy's ``step_up_within`` and, when MFA is required, a second factor as
        recent. The lock state is left alone: a self-service reset never lifts a lock.
        Each removal emits ``CREDENTIAL_REMOVED`` with the subject as actor and reason
        ``"self_reset"``; a refusal emits ``FAILED`` with reason ``"StepUpRequired"``.

        Args:
            subject: Who resets, acting on their own credentials.
            factor: The configured factor whose credentials to remove (``"sms"``, ...).
            context: The request's session facts (``password_verified_at``,
                ``mfa_verified_at``, ``now``).

        Returns:
            How many credentials were removed (pending enrolments included); ``0`` if
            the subject had none of that factor.

        Raises:
            InvalidType, InvalidInput: Malformed arguments.
            ConfigurationError: ``factor`` is not configured.
            StepUpRequired: The re-authentication is missing or too old; nothing changed.
        """
        subject = self._subject(subject)
        if not isinstance(factor, str):
            raise InvalidType(f"factor must be str, not {type(factor).__name__}")
        if not isinstance(context, Context):
            raise InvalidType(f"context must be a mfakit.Context, not {type(context).__name__}")
        name = self.factor(factor).name
        decision = self.evaluate(subject, dataclasses.replace(context, action="remove_factor"))
        if not decision.step_up_satisfied:
            self._emit(
                EventType.FAILED,
                subject,
                factor=name,
                actor=subject.id,
                reason=StepUpRequired.__name__,
                detail={"action": "remove_factor"},
            )
            raise StepUpRequired("re-authenticate before removing a factor")
        return self._remove_all(subject, name, actor=subject.id, reason="self_reset")
