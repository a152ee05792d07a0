"""The :class:`MFA` facade: the one place in mfakit that does I/O.

It sequences the pure parts (factors, lockout maths) and the host's implementations
(store, clock, event sink). It holds no logic of its own beyond that sequencing: every
state change is computed by a pure function and written with one conditional write,
retried when another writer got there first.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Final, Literal, TypeVar, overload

from mfakit import _throttle
from mfakit._admin import AdminMixin, Authorizer, DenyAll
from mfakit._clock import SystemClock
from mfakit._knowledge import KNOWLEDGE_FACTORS, KnowledgeMixin
from mfakit._messaging import CodeEnrollment, MessagingMixin
from mfakit._models import (
    Challenge,
    Changes,
    Credential,
    Event,
    EventType,
    LockState,
    Subject,
    SubjectRecords,
    Verification,
    build_verification,
    new_id,
    validate_actor,
    validate_id,
)
from mfakit._parts import MAX_WRITE_RETRIES
from mfakit._policy import Context, Decision, DefaultPolicyEngine, Policy, PolicyEngine
from mfakit._throttle import Lockout
from mfakit.exceptions import (
    ChallengeNotFound,
    ConcurrencyConflict,
    ConfigurationError,
    CredentialNotFound,
    DecryptionError,
    ExpiredCode,
    InvalidCode,
    InvalidType,
    LockedOut,
    MalformedCode,
    MFAError,
    NotEnrolled,
    ReplayedCode,
    VerificationFailed,
)
from mfakit.factors._base import Factor, FactorSetup, secret_aad
from mfakit.factors._delivered import DeliveredCodeFactor
from mfakit.factors.email import EmailSetup
from mfakit.factors.recovery_codes import RecoveryCodeBatch, RecoveryCodesSetup
from mfakit.factors.recovery_pin import PINSetup
from mfakit.factors.secret_questions import QuestionSetup
from mfakit.factors.sms import SMSSetup
from mfakit.factors.totp import TOTP, TOTPEnrollment, TOTPSetup
from mfakit.hazmat.compare import MAX_CODE_INPUT, normalize_code
from mfakit.hazmat.secretbox import Keyring
from mfakit.typing import Clock, EventSink, Store

__all__ = ["MFA"]

_log = logging.getLogger("mfakit")
#: Factors whose ``Credential.secret`` is not a keyring blob (hashes, keyed tags).
UNENCRYPTED_SECRET_FACTORS: Final = frozenset(
    {"recovery_pin", "secret_questions", "recovery_codes"}
)
#: What :meth:`MFA.enroll` returns, by factor family.
Enrollment = TOTPEnrollment | CodeEnrollment | Credential | RecoveryCodeBatch
_T = TypeVar("_T")
#: What a TOTP unit decided: the charged lock state, and the credential that matched or
#: the failure to raise once the unit's writes are durable.
_Outcome = tuple[LockState, Credential | VerificationFailed | DecryptionError]


class _NullSink:
    __slots__ = ()

    def emit(self, event: Event) -> None:
        return None


class MFA(MessagingMixin, KnowledgeMixin, AdminMixin):
    """Multi-factor authentication for one application: enrol, challenge, verify.

    Args:
        store: Where credentials, challenges and lock state live (:class:`MemoryStore`,
            or any :class:`~mfakit.typing.Store`).
        keyring: Encrypts factor secrets at rest (:class:`Keyring`).
        factors: The configured factors, at most one per name.
        clock: Time source; :class:`SystemClock` by default. Tests pass a ``FakeClock``.
        events: Receives audit events; nothing by default.
        lockout: Brute-force limits shared by all factors (default: 5 failures, then a
            growing back-off from 30 s to 1 h, suspension at 100).
        policy: Who must do what (a :class:`Policy`, or any :class:`PolicyEngine`);
            default ``Policy()``: TOTP required, machine-to-machine subjects exempt.
        authorizer: Decides which administrator may do what (:class:`Authorizer`);
            default :class:`DenyAll`, which refuses every administrative action.

    Every method validates its input first and raises a typed
    :class:`~mfakit.exceptions.MFAError` subclass without changing anything on bad input.
    Every verification returns evidence on success and raises on failure.

    Raises:
        ConfigurationError: If the factors are misconfigured.
    """

    def __init__(
        self,
        *,
        store: Store,
        keyring: Keyring,
        factors: Sequence[Factor],
        clock: Clock | None = None,
        events: EventSink | None = None,
        lockout: Lockout | None = None,
        policy: Policy | PolicyEngine | None = None,
        authorizer: Authorizer | None = None,
    ) -> None:
        if not isinstance(keyring, Keyring):
            raise ConfigurationError("keyring must be a mfakit.Keyring")
        by_name: dict[str, Factor] = {}
        for factor in factors:
            if not isinstance(factor, Factor):
                raise ConfigurationError(f"not a factor: {factor!r}")
            if factor.name in by_name:
                raise ConfigurationError(f"factor {factor.name!r} configured twice")
            by_name[factor.name] = factor
        if not by_name:
            raise ConfigurationError("configure at least one factor")
        self.store = store
        self.keyring = keyring
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.events: EventSink = events if events is not None else _NullSink()
        self.lockout = lockout if lockout is not None else Lockout()
        if policy is None or isinstance(policy, Policy):
            self.policy: PolicyEngine = DefaultPolicyEngine(policy)
        elif isinstance(policy, PolicyEngine):
            self.policy = policy
        else:
            raise ConfigurationError("policy must be a Policy or a PolicyEngine")
        if authorizer is not None and not isinstance(authorizer, Authorizer):
            raise ConfigurationError("authorizer must implement allowed(actor, action, ...)")
        self.authorizer: Authorizer = authorizer if authorizer is not None else DenyAll()
        self._factors = by_name
        self._silent = isinstance(self.events, _NullSink)

    def __repr__(self) -> str:
        return f"MFA(factors={sorted(self._factors)}, store={self.store!r})"

    # helpers ---------------------------------------------------------------------------
    def factor(self, name: str) -> Factor:
        """Return the configured factor called ``name``.

        Raises:
            ConfigurationError: If no such factor is configured.
        """
        try:
            return self._factors[name]
        except (KeyError, TypeError):
            raise ConfigurationError(f"factor {name!r} is not configured") from None

    def _code_factor(self, name: str) -> TOTP:
        factor = self.factor(name)
        if not isinstance(factor, TOTP):  # a delivered-code or knowledge factor's name
            raise ConfigurationError(f"factor {name!r} does not verify codes this way")
        return factor

    @property
    def factor_names(self) -> tuple[str, ...]:
        """Names of the configured factors, in configuration order."""
        return tuple(self._factors)

    def _emit(self, type_: EventType, subject: Subject | None, **fields: object) -> None:
        if self._silent:
            return
        event = Event(
            type_,
            self.clock.now(),
            subject.id if subject is not None else None,
            subject.tenant if subject is not None else None,
            **fields,  # type: ignore[arg-type]
        )
        try:
            self.events.emit(event)
        except Exception:  # an audit sink must never break sign-in; it is logged instead
            _log.exception("mfakit event sink failed for %s", type_.value)

    def _expired(self, subject: Subject, message: str, **fields: object) -> ExpiredCode:
        """Audit an attempt on something expired (SECURITY.md 37); return the error to raise."""
        self._emit(EventType.FAILED, subject, reason=ExpiredCode.__name__, **fields)
        return ExpiredCode(message)

    @staticmethod
    def _subject(subject: object) -> Subject:
        if not isinstance(subject, Subject):
            raise InvalidType(f"subject must be a mfakit.Subject, not {type(subject).__name__}")
        return subject

    def _update(
        self,
        read: Callable[[], _T | None],
        step: Callable[[_T], _T | None],
        write: Callable[[_T], bool],
    ) -> _T | None:
        """Read-compute-conditionally-write until the write lands (optimistic concurrency).

        ``step`` returns the next record, or ``None`` to stop without writing. Returns the
        record written, or ``None`` if there was nothing to write.
        """
        for _ in range(MAX_WRITE_RETRIES):
            current = read()
            if current is None:
                return None
            new = step(current)
            if new is None:
                return None
            if write(new):
                return new
        raise ConcurrencyConflict("conditional write kept losing the race")

    def _owned_credential(self, subject: Subject, credential_id: object) -> Credential:
        validate_id(credential_id, "credential_id")
        credential = self.store.get_credential(credential_id)  # type: ignore[arg-type]
        if credential is None or credential.subject_id != subject.id:
            raise CredentialNotFound("no such credential for this subject")
        return credential

    # policy ----------------------------------------------------------------------------
    def evaluate(self, subject: Subject, context: Context | None = None) -> Decision:
        """What ``subject`` must do now, and why (see :class:`Decision`).

        Args:
            subject: Who is signing in or acting.
            context: The action and session facts; default: a sign-in now.
        """
        subject = self._subject(subject)
        if context is None:
            context = Context(now=self.clock.now())
        elif not isinstance(context, Context):
            raise InvalidType(f"context must be a mfakit.Context, not {type(context).__name__}")
        decision = self.policy.evaluate(subject, self.store.list_credentials(subject.id), context)
        self._emit(
            EventType.POLICY_DECIDED,
            subject,
            reason="required" if decision.required else "not_required",
            detail={"action": context.action, "reasons": list(decision.reasons)},
        )
        return decision

    # lockout ---------------------------------------------------------------------------
    def _charge(self, subject: Subject, now: dt.datetime, **fields: object) -> LockState:
        """Charge one attempt before any comparison (SECURITY.md 14).

        An attempt refused because the subject is locked changes nothing, but it is still
        audited as a failure (SECURITY.md 37).
        """
        store = self.store
        policy = self.lockout
        for _ in range(MAX_WRITE_RETRIES):
            state = store.get_lock_state(subject.id)
            try:
                charged = _throttle.charge(state, policy, now)
            except LockedOut:
                self._emit(EventType.FAILED, subject, reason="LockedOut", **fields)
                raise
            if store.put_lock_state(charged):
                return charged
        raise ConcurrencyConflict("could not charge the attempt")

    def _succeeded(self, subject: Subject, charged: LockState | None = None) -> None:
        store = self.store
        # Usually nobody wrote since our own charge: try the reset on top of it first.
        if charged is not None and store.put_lock_state(_throttle.reset(charged)):
            return
        for _ in range(MAX_WRITE_RETRIES):
            state = store.get_lock_state(subject.id)
            if state.failures == 0 and not state.suspended and state.locked_until is None:
                return
            if store.put_lock_state(_throttle.reset(state)):
                return
        raise ConcurrencyConflict("could not record the success")

    def _failed(
        self, subject: Subject, charged: LockState, exc: MFAError, **fields: object
    ) -> None:
        self._emit(EventType.FAILED, subject, reason=type(exc).__name__, **fields)
        if _throttle.triggered(charged, self.lockout):
            until = charged.locked_until
            self._emit(
                EventType.LOCKED,
                subject,
                reason="suspended" if charged.suspended else "temporary",
                detail={
                    "failures": charged.failures,
                    "locked_until": None if until is None else until.isoformat(),
                },
                **fields,
            )

    def lock_state(self, subject: Subject) -> LockState:
        """Return the subject's current failure count and lock."""
        return self.store.get_lock_state(self._subject(subject).id)

    def unlock(self, subject: Subject, *, actor: str) -> LockState:
        """Clear a subject's failures and lock (temporary or suspended).

        Args:
            subject: Whom to unlock.
            actor: Who unlocks (an administrator's id), recorded in the event.
        """
        subject = self._subject(subject)
        validate_actor(actor)
        written = self._update(
            lambda: self.store.get_lock_state(subject.id),
            _throttle.reset,
            self.store.put_lock_state,
        )
        if written is None:  # pragma: no cover - get_lock_state never returns None
            raise ConcurrencyConflict("store returned no lock state")
        self._emit(EventType.UNLOCKED, subject, actor=actor)
        return written

    # enrolment -------------------------------------------------------------------------
    @overload
    def enroll(self, subject: Subject, setup: TOTPSetup | Literal["totp"]) -> TOTPEnrollment: ...
    @overload
    def enroll(self, subject: Subject, setup: SMSSetup | EmailSetup) -> CodeEnrollment: ...
    @overload
    def enroll(self, subject: Subject, setup: PINSetup | QuestionSetup) -> Credential: ...
    @overload
    def enroll(self, subject: Subject, setup: RecoveryCodesSetup) -> RecoveryCodeBatch: ...
    @overload
    def enroll(self, subject: Subject, setup: FactorSetup | str) -> Enrollment: ...

    def enroll(self, subject: Subject, setup: FactorSetup | str) -> Enrollment:
        """Start enrolling a factor. The credential stays pending until :meth:`confirm`.

        Args:
            subject: Who enrols.
            setup: A factor's setup request, such as ``TOTP.setup(label="Phone")``,
                ``SMSOTP.setup("0412 345 678", "AU")`` or ``EmailOTP.setup(address)``, or
                ``"totp"`` for an authenticator app with the defaults.

        Returns:
            What to show the subject: for TOTP a :class:`TOTPEnrollment` (key, URI, QR
            codes); for SMS and e-mail a :class:`CodeEnrollment` (a code was sent); for a
            recovery PIN or secret questions the active :class:`Credential` (it replaces
            the previous one); for recovery codes a :class:`RecoveryCodeBatch` whose codes
            are shown once (the previous batch stops working).

        Raises:
            ConfigurationError: The factor is not configured.
            InvalidInput: Malformed setup (for SMS a :class:`PhoneNumberError` subclass).
            SendRefused, DeliveryError: The first code could not be sent; nothing is kept.
        """
        subject = self._subject(subject)
        if isinstance(setup, FactorSetup) and isinstance(
            self._factors.get(setup.factor), DeliveredCodeFactor
        ):
            return self._enroll_delivered(subject, setup)
        if isinstance(setup, (PINSetup, QuestionSetup, RecoveryCodesSetup)):
            return self._enroll_knowledge(subject, setup)
        if isinstance(setup, str):
            factor = self.factor(setup)
            if not isinstance(factor, TOTP):
                raise ConfigurationError(f"factor {setup!r} cannot be enrolled this way")
            setup = TOTP.setup()
        if not isinstance(setup, TOTPSetup):
            raise InvalidType(f"unsupported setup request: {type(setup).__name__}")
        factor = self._code_factor(setup.factor)
        now = self.clock.now()
        enrollment = factor.begin(subject, setup, now=now, keyring=self.keyring)
        if not self.store.put_credential(enrollment.credential):
            raise ConcurrencyConflict("credential id collision")  # pragma: no cover
        self._emit(
            EventType.ENROLLMENT_STARTED,
            subject,
            factor=factor.name,
            credential_id=enrollment.id,
        )
        return enrollment

    def confirm(self, subject: Subject, enrollment_id: str, code: str) -> Credential:
        """Activate a pending enrolment with a code from the new authenticator.

        The code's time step is recorded, so the same code cannot then sign in (RFC 6238
        5.2). Attempts count against the subject's lockout like any other.

        Returns:
            The active credential.

        Raises:
            MalformedCode: The code is not N ASCII digits (nothing is charged).
            CredentialNotFound: Unknown id, or not this subject's, or already active.
            ExpiredCode: The pending enrolment lapsed.
            InvalidCode, ReplayedCode, LockedOut: As for :meth:`verify`.
        """
        subject = self._subject(subject)
        credential = self._owned_credential(subject, enrollment_id)
        if credential.active:
            raise CredentialNotFound("credential is already active; nothing to confirm")
        if isinstance(self.factor(credential.factor), DeliveredCodeFactor):
            return self._confirm_message_enrollment(subject, credential, code)
        factor = self._code_factor(credential.factor)
        normalized = normalize_code(code, digits=credential.params.get("digits", 6))
        now = self.clock.now()
        if credential.expires_at is not None and now >= credential.expires_at:
            raise self._expired(
                subject,
                "the pending enrolment has expired; start again",
                factor=factor.name,
                credential_id=credential.id,
            )
        charged = self._charge(subject, now, factor=factor.name, credential_id=credential.id)
        try:
            confirmed = self._apply_code(factor, credential, normalized, now)
        except VerificationFailed as exc:
            self._failed(subject, charged, exc, factor=factor.name, credential_id=credential.id)
            raise
        self._succeeded(subject)
        self._emit(
            EventType.ENROLLMENT_CONFIRMED,
            subject,
            factor=factor.name,
            credential_id=confirmed.id,
        )
        return confirmed

    def _confirm_message_enrollment(
        self, subject: Subject, credential: Credential, code: str
    ) -> Credential:
        now = self.clock.now()
        if credential.expires_at is not None and now >= credential.expires_at:
            raise self._expired(
                subject,
                "the pending enrolment has expired; start again",
                factor=credential.factor,
                credential_id=credential.id,
            )
        confirmed = self._confirm_delivered(subject, credential, code, now)
        self._emit(
            EventType.ENROLLMENT_CONFIRMED,
            subject,
            factor=confirmed.factor,
            credential_id=confirmed.id,
        )
        return confirmed

    def credentials(self, subject: Subject, *, include_pending: bool = False) -> list[Credential]:
        """List a subject's credentials (active ones, plus pending if asked)."""
        subject = self._subject(subject)
        now = self.clock.now()
        return [
            c
            for c in self.store.list_credentials(subject.id)
            if c.active or (include_pending and (c.expires_at is None or now < c.expires_at))
        ]

    def remove(
        self, subject: Subject, credential_id: str, *, actor: str | None = None
    ) -> Credential:
        """Remove one of the subject's credentials.

        Raises:
            CredentialNotFound: Unknown id or another subject's.
        """
        subject = self._subject(subject)
        if actor is not None:
            validate_actor(actor)
        credential = self._owned_credential(subject, credential_id)
        for _ in range(MAX_WRITE_RETRIES):
            if self.store.delete_credential(credential.id, version=credential.version):
                break
            credential = self._owned_credential(subject, credential_id)
        else:  # pragma: no cover - needs a store that keeps changing the record
            raise ConcurrencyConflict("could not remove the credential")
        self._emit(
            EventType.CREDENTIAL_REMOVED,
            subject,
            factor=credential.factor,
            credential_id=credential.id,
            actor=actor,
        )
        return credential

    # sign-in ---------------------------------------------------------------------------
    def challenge(
        self, subject: Subject, factor: str, *, credential_id: str | None = None
    ) -> Challenge:
        """Open a challenge: the subject is now expected to prove ``factor``.

        For TOTP nothing is sent; the challenge binds the attempt to this subject, limits
        attempts and expires. A challenge is created even when the subject has no
        credential for the factor, so the answer does not reveal which factors a subject
        has (SECURITY.md 36); verifying it then fails like a wrong code.

        Raises:
            ConfigurationError: ``factor`` is not configured.
            CredentialNotFound: ``credential_id`` is not the subject's.
        """
        subject = self._subject(subject)
        if not isinstance(factor, str):
            raise InvalidType(f"factor must be str, not {type(factor).__name__}")
        impl = self.factor(factor)
        if isinstance(impl, DeliveredCodeFactor):
            return self._challenge_delivered(subject, impl, credential_id)
        prompts = self._open_knowledge_challenge(subject, impl)
        if credential_id is not None:
            credential = self._owned_credential(subject, credential_id)
            if credential.factor != impl.name or not credential.active:
                raise CredentialNotFound("credential is not an active one of that factor")
        now = self.clock.now()
        challenge = Challenge(
            id=new_id("ch"),
            subject_id=subject.id,
            tenant=subject.tenant,
            factor=impl.name,
            created_at=now,
            expires_at=now + impl.challenge_ttl,
            max_attempts=impl.max_attempts,
            credential_id=credential_id,
            prompts=prompts,
        )
        if not self.store.put_challenge(challenge):
            raise ConcurrencyConflict("challenge id collision")  # pragma: no cover
        self._emit(
            EventType.CHALLENGE_CREATED, subject, factor=impl.name, challenge_id=challenge.id
        )
        return challenge

    def verify(self, subject: Subject, challenge_id: str, code: str) -> Verification:
        """Check a code against an open challenge. Success returns evidence; failure raises.

        Order of work: input is validated (nothing is charged for malformed input), the
        attempt is charged against the subject's lockout and the challenge's own limit
        *before* any comparison (SECURITY.md 14), then the code is compared in constant
        time against every step of every candidate credential, and the accepted step is
        written with a conditional write so that of N concurrent submissions of one code
        exactly one succeeds (SECURITY.md 4).

        Args:
            subject: Who answers. Must own the challenge.
            challenge_id: From :meth:`challenge`.
            code: What the subject typed ("123 456" is fine).

        Returns:
            A :class:`Verification` naming the credential that matched.

        Raises:
            InvalidType, MalformedCode, InvalidInput: Malformed arguments; nothing charged.
            ChallengeNotFound: Unknown, used, exhausted or another subject's challenge.
            ExpiredCode: The challenge expired.
            LockedOut: Too many failures; right and wrong codes alike.
            InvalidCode, ReplayedCode, NotEnrolled: The attempt failed (and was counted).
        """
        if type(subject) is not Subject:
            subject = self._subject(subject)
        validate_id(challenge_id, "challenge_id")
        if not isinstance(code, str):
            raise InvalidType(f"a code must be str, not {type(code).__name__}")
        if len(code) > MAX_CODE_INPUT:
            raise MalformedCode(f"code input longer than {MAX_CODE_INPUT} characters")
        store = self.store
        challenge = store.get_challenge(challenge_id)
        if challenge is None or challenge.subject_id != subject.id:
            raise ChallengeNotFound("no open challenge with that id for this subject")
        now = self.clock.now()
        if now >= challenge.expires_at:
            raise self._expired(
                subject,
                "the challenge has expired",
                factor=challenge.factor,
                challenge_id=challenge.id,
            )
        factor = self.factor(challenge.factor)
        if not isinstance(factor, TOTP):  # the common case (TOTP) first: one type check
            if isinstance(factor, DeliveredCodeFactor):
                return self._verify_delivered(factor, subject, challenge, code, now)
            if isinstance(factor, KNOWLEDGE_FACTORS):
                return self._verify_knowledge(factor, subject, challenge, code)
            raise ConfigurationError(
                f"factor {factor.name!r} cannot verify codes"
            )  # pragma: no cover
        return self._attempt_code(subject, factor, code, now, challenge)

    def verify_totp(self, subject: Subject, code: str, *, factor: str = "totp") -> Verification:
        """Check an authenticator-app code without opening a challenge first.

        The fast way to sign in with TOTP: nothing needs to be sent or remembered between
        showing the form and checking the code, so the whole check is one unit of store
        work (:meth:`~mfakit.typing.Store.update_subject`). Everything else is as in
        :meth:`verify`: the attempt is charged against the subject's lockout before the
        comparison (SECURITY.md 14), every active credential of the factor is tried in
        constant time within the drift window, a time step is accepted at most once
        (SECURITY.md 3) and of concurrent submissions of one code exactly one succeeds
        (SECURITY.md 4). What a challenge adds, and this does not, is its own attempt
        limit and expiry; the subject's lockout still bounds guessing.

        Args:
            subject: Who answers.
            code: What the subject typed ("123 456" is fine).
            factor: The name of a configured TOTP factor.

        Returns:
            A :class:`Verification` naming the credential that matched (``challenge_id``
            is ``None``).

        Raises:
            InvalidType, MalformedCode: Malformed arguments; nothing charged.
            ConfigurationError: ``factor`` is not a configured TOTP factor.
            LockedOut: Too many failures; right and wrong codes alike.
            InvalidCode, ReplayedCode, NotEnrolled: The attempt failed (and was counted).
        """
        if type(subject) is not Subject:
            subject = self._subject(subject)
        if not isinstance(code, str):
            raise InvalidType(f"a code must be str, not {type(code).__name__}")
        if len(code) > MAX_CODE_INPUT:
            raise MalformedCode(f"code input longer than {MAX_CODE_INPUT} characters")
        if not isinstance(factor, str):
            raise InvalidType(f"factor must be str, not {type(factor).__name__}")
        return self._attempt_code(subject, self._code_factor(factor), code, self.clock.now())

    def _attempt_code(
        self,
        subject: Subject,
        factor: TOTP,
        code: str,
        now: dt.datetime,
        challenge: Challenge | None = None,
    ) -> Verification:
        """Charge, compare and record a TOTP attempt as one store unit.

        Inside the unit, which runs while no other unit of the subject can (so the
        charge is exact and precedes the comparison, SECURITY.md 14): the subject's
        lock is checked and charged, the challenge (if any) charged, and the code compared
        against every active credential of the factor. The unit then writes, all or
        nothing: on success the advanced credential (its new last step: a replay of the
        same code loses, SECURITY.md 3 and 4), the lock's clean slate and the challenge's
        deletion (single use); on failure the charged lock and challenge. Events are
        emitted after the unit, once its writes are durable.
        """
        policy = self.lockout
        challenge_id = None if challenge is None else challenge.id
        fields: dict[str, object] = {"factor": factor.name}
        if challenge_id is not None:
            fields["challenge_id"] = challenge_id

        def work(records: SubjectRecords) -> tuple[Changes, _Outcome]:
            live = records.challenge
            if challenge is not None and live is None:
                raise ChallengeNotFound("the challenge was used or withdrawn meanwhile")
            bound = None if live is None else live.credential_id
            candidates = [
                c
                for c in records.credentials
                if c.active and c.factor == factor.name and (bound is None or c.id == bound)
            ]
            codes = self._normalize(factor, candidates, code)  # malformed: nothing charged
            charged = _throttle.charge(records.lock, policy, now)  # LockedOut: nothing charged
            if live is not None and live.attempts >= live.max_attempts:
                exhausted = ChallengeNotFound("the challenge has used all its attempts")
                return Changes(lock=charged, withdraw=live), (charged, exhausted)
            try:
                if not candidates:
                    # The HMAC work of a wrong code, so the time taken does not tell who
                    # has an authenticator app (SECURITY.md 36).
                    factor.decoy_check(codes.get(factor.digits, ""), now)
                    raise NotEnrolled("subject has no active credential for this factor")
                matched = self._match_any(factor, candidates, codes, now)
            except (VerificationFailed, DecryptionError) as exc:
                counted = None if live is None else live.charged()
                return Changes(lock=charged, challenge=counted), (charged, exc)
            settled = _throttle.settled(records.lock)
            return Changes(lock=settled, credential=matched, withdraw=live), (charged, matched)

        try:
            store = self.store
            charged, outcome = store.update_subject(subject.id, work, challenge_id=challenge_id)
        except LockedOut:
            self._emit(EventType.FAILED, subject, reason="LockedOut", **fields)
            raise
        if isinstance(outcome, Credential):
            return self._verified(subject, factor, challenge_id, outcome.id, now)
        self._failed(subject, charged, outcome, **fields)
        try:
            raise outcome
        finally:
            del outcome  # no reference cycle through this frame's traceback

    def _verified(
        self,
        subject: Subject,
        factor: Factor,
        challenge_id: str | None,
        credential_id: str | None,
        now: dt.datetime,
        *,
        recovery: bool = False,
    ) -> Verification:
        """Audit a success and build its evidence (every factor ends here)."""
        if not self._silent:
            self._emit(
                EventType.VERIFIED,
                subject,
                factor=factor.name,
                challenge_id=challenge_id,
                credential_id=credential_id,
                detail={"recovery": True} if recovery else {},
            )
            if recovery:
                # In without a device: the host must have the subject set up a factor again.
                self._emit(
                    EventType.RECOVERY_USED,
                    subject,
                    factor=factor.name,
                    challenge_id=challenge_id,
                    credential_id=credential_id,
                )
        return build_verification(
            subject.id,
            subject.tenant,
            factor.name,
            credential_id,
            challenge_id,
            now,
            factor.kind,
            recovery,
        )

    @staticmethod
    def _normalize(factor: TOTP, candidates: Sequence[Credential], code: str) -> dict[int, str]:
        """Normalise ``code`` for each code length in use; raise if it fits none.

        Credentials keep the length they were enrolled with, so a subject may hold 6- and
        8-digit authenticators at once.
        """
        default = factor.digits
        lengths = {c.params.get("digits", default) for c in candidates} if candidates else ()
        if not lengths or lengths == {default}:  # the common case: one length
            return {default: normalize_code(code, digits=default)}
        codes: dict[int, str] = {}
        error: MalformedCode | None = None
        for digits in lengths:
            try:
                codes[digits] = normalize_code(code, digits=digits)
            except MalformedCode as exc:
                error = exc
        if error is not None and not codes:
            raise error
        return codes

    def _charge_challenge(self, challenge: Challenge) -> Challenge:
        store = self.store
        for _ in range(MAX_WRITE_RETRIES):
            if challenge.attempts >= challenge.max_attempts:
                store.delete_challenge(challenge.id, version=challenge.version)
                raise ChallengeNotFound("the challenge has used all its attempts")
            charged = challenge.charged()
            if store.put_challenge(charged):
                return charged
            current = store.get_challenge(challenge.id)
            if current is None:
                raise ChallengeNotFound("the challenge was used or withdrawn meanwhile")
            challenge = current
        raise ConcurrencyConflict("could not charge the challenge")

    def _match_any(
        self,
        factor: TOTP,
        candidates: Iterable[Credential],
        codes: dict[int, str],
        now: dt.datetime,
    ) -> Credential:
        # Only flags survive the loop: keeping the exception objects in this frame (which
        # then raises) would leave reference cycles behind on every failed attempt.
        replayed = False
        broken: str | None = None
        for credential in candidates:
            code = codes.get(credential.params.get("digits", factor.digits))
            if code is None:
                continue
            try:
                return factor.check(credential, code, now=now, keyring=self.keyring)
            except ReplayedCode:
                replayed = True
            except InvalidCode:
                pass
            except DecryptionError as exc:
                # One unreadable credential (a key removed too early, a corrupted row)
                # must not lock the subject out of the others; it is logged for operators.
                _log.error("mfakit: credential %s cannot be decrypted: %s", credential.id, exc)
                broken = str(exc)
        if broken is not None:
            raise DecryptionError(broken)
        # A replay is the more specific fact; either way the public message is the same.
        if replayed:
            raise ReplayedCode("code was already used (time step not after the last one)")
        raise InvalidCode("code does not match any credential of the subject")

    def _apply_code(
        self, factor: TOTP, credential: Credential, code: str, now: dt.datetime
    ) -> Credential:
        """Check ``code`` and persist the advanced counter; re-check if we lost a race.

        If another request advanced the same credential first, the fresh record is checked
        again, which turns the losing copy of a code into a :class:`ReplayedCode`.
        """
        store = self.store
        for _ in range(MAX_WRITE_RETRIES):
            advanced = factor.check(credential, code, now=now, keyring=self.keyring)
            if store.put_credential(advanced):
                return advanced
            current = store.get_credential(credential.id)
            if current is None or current.subject_id != credential.subject_id:
                raise CredentialNotFound("credential was removed meanwhile")
            credential = current
        raise ConcurrencyConflict("could not record the accepted code")

    # maintenance -----------------------------------------------------------------------
    def rotate_keys(self) -> int:
        """Re-encrypt every secret not under the keyring's primary key.

        Safe while the application runs: each record is rewritten with a conditional
        write, and old keys keep decrypting until you remove them.

        Only encrypted secrets (TOTP seeds, phone numbers, addresses) are re-encrypted.
        Argon2id hashes (PIN, secret answers) involve no key. Recovery-code hashes are
        keyed but cannot be recomputed without the codes: keep their key in the keyring
        until each batch is replaced.

        Returns:
            How many credentials were re-encrypted.
        """
        keyring = self.keyring
        rotated = 0
        for credential in self.store.iter_credentials():
            if credential.factor in UNENCRYPTED_SECRET_FACTORS or not credential.secret:
                continue
            if not keyring.needs_rotation(credential.secret):
                continue

            def step(current: Credential) -> Credential | None:
                if not keyring.needs_rotation(current.secret):
                    return None
                blob = keyring.rotate(current.secret, aad=secret_aad(current))
                return dataclasses.replace(current, secret=blob, version=current.version + 1)

            if self._update(
                functools.partial(self.store.get_credential, credential.id),
                step,
                self.store.put_credential,
            ):
                rotated += 1
        self._emit(EventType.KEYS_ROTATED, None, actor="system", detail={"rotated": rotated})
        return rotated

    def purge_expired(self, *, keep_for: dt.timedelta = dt.timedelta(minutes=10)) -> int:
        """Delete challenges that expired more than ``keep_for`` ago; returns how many.

        Run it periodically. An expired challenge never verifies, but an SMS or e-mail
        challenge can still be *resent* after its code expired (the "Resend" link), so by
        default challenges are kept ten minutes past their expiry. ``keep_for=timedelta(0)``
        deletes them the moment they expire.

        Raises:
            InvalidType: ``keep_for`` is not a non-negative timedelta.
        """
        if not isinstance(keep_for, dt.timedelta) or keep_for < dt.timedelta(0):
            raise InvalidType("keep_for must be a non-negative datetime.timedelta")
        return self.store.purge_challenges(now=self.clock.now() - keep_for)
