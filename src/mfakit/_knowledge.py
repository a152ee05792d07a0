"""The facade's half for knowledge and recovery factors: PIN, secret questions, codes.

Kept apart from ``_service`` like ``_messaging``; :class:`~mfakit.MFA` inherits it. All
three draw on the subject's one lockout budget (SECURITY.md 17): every attempt is charged
before the comparison, exactly as for codes. Each comparison does its full work whether or
not the subject has the factor, so neither answers nor timing reveal enrolment
(SECURITY.md 36). A success with a recovery factor is marked ``recovery=True``: the host
must have the subject set up a possession factor again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from mfakit._models import (
    Challenge,
    Credential,
    EventType,
    Subject,
    Verification,
    validate_id,
)
from mfakit._parts import MAX_WRITE_RETRIES, FacadeParts
from mfakit.exceptions import (
    ChallengeNotFound,
    ConcurrencyConflict,
    ConfigurationError,
    InvalidCode,
    InvalidInput,
    InvalidType,
    MFAError,
    NotEnrolled,
    VerificationFailed,
)
from mfakit.factors._base import Factor, secret_aad
from mfakit.factors.recovery_codes import (
    RecoveryCodeBatch,
    RecoveryCodes,
    normalize_recovery_code,
)
from mfakit.factors.recovery_pin import PINSetup, RecoveryPIN, normalize_pin
from mfakit.factors.secret_questions import QuestionSetup, SecretQuestions, normalize_answer

__all__ = ["KNOWLEDGE_FACTORS", "KnowledgeMixin"]

_T = TypeVar("_T")
KNOWLEDGE_FACTORS = (RecoveryPIN, SecretQuestions, RecoveryCodes)


def national_digits(number: str) -> str:
    """The digits of ``number`` in its national format (with the trunk prefix), or ``""``."""
    import phonenumbers

    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return ""
    national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    return "".join(c for c in national if c.isascii() and c.isdigit())


class KnowledgeMixin(FacadeParts):
    """Recovery PIN, secret questions and recovery codes for :class:`~mfakit.MFA`."""

    # helpers -----------------------------------------------------------------------------
    def _active_of(self, subject: Subject, factor_name: str) -> Credential | None:
        found = [
            c
            for c in self.store.list_credentials(subject.id)
            if c.active and c.factor == factor_name
        ]
        return found[-1] if found else None

    def _replace_others(self, subject: Subject, kept: Credential) -> None:
        """A new PIN, question set or code batch replaces the previous one at once."""
        for other in self.store.list_credentials(subject.id):
            replaced = other.factor == kept.factor and other.id != kept.id
            if replaced and self.store.delete_credential(other.id, version=other.version):
                self._emit(
                    EventType.CREDENTIAL_REMOVED,
                    subject,
                    factor=kept.factor,
                    credential_id=other.id,
                    reason="replaced",
                )

    def _phone_digits(self, subject: Subject) -> list[str]:
        """Digits of the subject's known phone numbers, which a PIN may not reuse.

        Each number in both forms: international (``61412345678``) and national as the
        subject types it (``0412345678``).
        """
        numbers: list[str] = []
        for credential in self.store.list_credentials(subject.id):
            if credential.factor == "sms" and credential.secret:
                try:
                    plain = self.keyring.decrypt(credential.secret, aad=secret_aad(credential))
                except MFAError:
                    continue
                numbers.append(plain.decode())
        extra = subject.attributes.get("phone")
        if isinstance(extra, str) and len(extra) <= 64:
            numbers.append(extra)
        digits: list[str] = []
        for number in numbers:
            digits.append("".join(c for c in number if c.isascii() and c.isdigit()))
            digits.append(national_digits(number))
        return [d for d in digits if d]

    # enrolment ---------------------------------------------------------------------------
    def _enroll_knowledge(self, subject: Subject, setup: object) -> Credential | RecoveryCodeBatch:
        now = self.clock.now()
        if isinstance(setup, PINSetup):
            pin_factor = self._knowledge(setup.factor, RecoveryPIN)
            credential = pin_factor.begin(
                subject, setup, now=now, avoid=self._phone_digits(subject)
            )
            result: Credential | RecoveryCodeBatch = credential
        elif isinstance(setup, QuestionSetup):
            questions = self._knowledge(setup.factor, SecretQuestions)
            credential = questions.begin(subject, setup, now=now)
            result = credential
        else:
            codes = self._knowledge("recovery_codes", RecoveryCodes)
            batch = codes.begin(subject, now=now, keyring=self.keyring)
            credential = batch.credential
            result = batch
        if not self.store.put_credential(credential):
            raise ConcurrencyConflict("credential id collision")  # pragma: no cover
        self._replace_others(subject, credential)
        self._emit(
            EventType.ENROLLMENT_CONFIRMED,
            subject,
            factor=credential.factor,
            credential_id=credential.id,
        )
        return result

    def _knowledge(self, name: str, kind: type[_T]) -> _T:
        factor = self.factor(name)
        if not isinstance(factor, kind):
            raise ConfigurationError(f"factor {name!r} is not a {kind.__name__}")
        return factor

    # queries -----------------------------------------------------------------------------
    def secret_questions(self, subject: Subject) -> list[str]:
        """The texts of the subject's secret questions, in order; never the answers.

        Answers are hashed and cannot be recovered by anyone, administrators included
        (a deliberate difference from the register, which shows them).
        """
        subject = self._subject(subject)
        factor = self._knowledge("secret_questions", SecretQuestions)
        credential = self._active_of(subject, factor.name)
        if credential is None:
            return []
        return [factor.question_text(q) for q in factor.questions(credential)]

    def questions_need_update(self, subject: Subject) -> bool:
        """Whether the subject's stored set breaks the current rules (or is missing)."""
        subject = self._subject(subject)
        factor = self._knowledge("secret_questions", SecretQuestions)
        credential = self._active_of(subject, factor.name)
        return credential is None or factor.needs_update(credential)

    def recovery_codes_remaining(self, subject: Subject) -> int:
        """How many unused recovery codes the subject has (0 without a batch)."""
        subject = self._subject(subject)
        credential = self._active_of(subject, "recovery_codes")
        return 0 if credential is None else RecoveryCodes.remaining(credential)

    def change_pin(self, subject: Subject, current_pin: str, new_pin: str) -> Credential:
        """Replace the recovery PIN after re-entering the current one.

        The current PIN is checked like any attempt (charged against the lockout).

        Raises:
            InvalidCode, LockedOut, NotEnrolled: The current PIN was not proved.
            InvalidInput, WeakSecret: The new PIN breaks the rules (nothing changed).
        """
        subject = self._subject(subject)
        factor = self._knowledge("recovery_pin", RecoveryPIN)
        factor.check_strength(new_pin, avoid=self._phone_digits(subject))
        normalize_pin(current_pin)
        now = self.clock.now()
        credential = self._active_of(subject, factor.name)
        charged = self._charge(subject, now, factor=factor.name)
        try:
            if not factor.matches(credential, current_pin):
                if credential is None:
                    raise NotEnrolled("subject has no recovery PIN")
                raise InvalidCode("current PIN does not match")
        except VerificationFailed as exc:
            self._failed(subject, charged, exc, factor=factor.name)
            raise
        self._succeeded(subject, charged)
        result = self._enroll_knowledge(subject, RecoveryPIN.setup(new_pin))
        if not isinstance(result, Credential):  # pragma: no cover - a PIN enrols a Credential
            raise ConfigurationError("unexpected enrolment result")
        return result

    # sign-in -----------------------------------------------------------------------------
    def _open_knowledge_challenge(self, subject: Subject, factor: Factor) -> tuple[str, ...]:
        """The prompts for a knowledge challenge (the questions to ask, or nothing)."""
        if isinstance(factor, SecretQuestions):
            credential = self._active_of(subject, factor.name)
            if credential is None:
                # Ask plausible questions anyway; answering them fails like a wrong answer
                # after the same argon2 work, so nothing reveals that no set exists
                # (SECURITY.md 36).
                return tuple(factor.decoy(self.keyring.mac(subject.id.encode(), purpose=b"q")))
            return tuple(factor.select(credential))
        return ()

    def answer(
        self, subject: Subject, challenge_id: str, answers: Mapping[str, str]
    ) -> Verification:
        """Answer a secret-questions challenge. Every asked question must be right.

        Args:
            subject: Who answers.
            challenge_id: From ``mfa.challenge(subject, "secret_questions")``; its
                ``prompts`` are the question ids to ask (texts via :meth:`question_text`).
            answers: Question id -> answer as typed (case and spacing do not matter).

        Returns:
            A :class:`Verification` of kind KNOWLEDGE.

        Raises:
            InvalidType, InvalidInput: Malformed answers (nothing charged).
            InvalidCode: Some answer was wrong. Which one is never said.
            ChallengeNotFound, ExpiredCode, LockedOut: As for ``verify``.
        """
        subject = self._subject(subject)
        if not isinstance(answers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in answers.items()
        ):
            raise InvalidType("answers must map question ids (str) to answers (str)")
        if len(answers) > 20 or any(len(v) > 256 for v in answers.values()):
            raise InvalidInput("too many or too long answers")
        for given in answers.values():
            normalize_answer(given)  # malformed (even after NFKC): refused, nothing charged
        challenge = self._knowledge_challenge(subject, challenge_id, "secret_questions")
        factor = self._knowledge(challenge.factor, SecretQuestions)
        credential = self._active_of(subject, factor.name)

        def check() -> bool:
            ok = factor.matches(credential, challenge.prompts, answers)
            if ok and credential is not None:
                upgraded = factor.rehashed(credential, challenge.prompts, answers)
                if upgraded is not None:  # best effort: a lost race only postpones it
                    self.store.put_credential(upgraded)
            return ok

        return self._attempt_knowledge(subject, challenge, factor, check, credential)

    def question_text(self, question_id: str) -> str:
        """The text of a question id from a challenge's ``prompts``."""
        factor = self._knowledge("secret_questions", SecretQuestions)
        if not isinstance(question_id, str):
            raise InvalidType("question_id must be str")
        try:
            return factor.question_text(question_id)
        except KeyError:
            raise InvalidInput("unknown question id") from None

    def _knowledge_challenge(self, subject: Subject, challenge_id: str, expected: str) -> Challenge:
        validate_id(challenge_id, "challenge_id")
        challenge = self.store.get_challenge(challenge_id)
        if challenge is None or challenge.subject_id != subject.id:
            raise ChallengeNotFound("no open challenge with that id for this subject")
        if challenge.factor != expected:
            raise ChallengeNotFound(f"the challenge is not a {expected} challenge")
        now = self.clock.now()
        if now >= challenge.expires_at:
            raise self._expired(
                subject,
                "the challenge has expired",
                factor=challenge.factor,
                challenge_id=challenge.id,
            )
        return challenge

    def _verify_knowledge(
        self, factor: Factor, subject: Subject, challenge: Challenge, secret: str
    ) -> Verification:
        """``verify`` for a PIN or a recovery code."""
        if isinstance(factor, RecoveryPIN):
            normalize_pin(secret)  # malformed: refused before anything is charged
            pin_factor = factor
            credential = self._active_of(subject, factor.name)

            def check() -> bool:
                ok = pin_factor.matches(credential, secret)
                if ok and credential is not None:
                    self._rehash_pin(pin_factor, credential, secret)
                return ok

            return self._attempt_knowledge(subject, challenge, factor, check, credential)
        if isinstance(factor, RecoveryCodes):
            code = normalize_recovery_code(secret)
            codes_factor = factor
            credential = self._active_of(subject, factor.name)
            return self._attempt_knowledge(
                subject,
                challenge,
                factor,
                lambda: self._spend_code(codes_factor, subject, credential, code),
                credential,
            )
        raise InvalidInput(f"{factor.name} challenges are answered with MFA.answer()")

    def _rehash_pin(self, factor: RecoveryPIN, credential: Credential, pin: str) -> None:
        """Upgrade the stored hash after a success if the parameters changed (OWASP)."""
        upgraded = factor.rehashed(credential, pin)
        if upgraded is not None:
            self.store.put_credential(upgraded)  # losing a race only postpones the upgrade

    def _spend_code(
        self, factor: RecoveryCodes, subject: Subject, credential: Credential | None, code: str
    ) -> bool:
        """Mark the matching code used with a conditional write: exactly one use wins."""
        current = credential
        for _ in range(MAX_WRITE_RETRIES):
            index = factor.match(self.keyring, current, code)
            if index is None or current is None:
                return False
            if self.store.put_credential(factor.spend(current, index, self.clock.now())):
                return True
            current = self.store.get_credential(current.id)
            if current is None or current.subject_id != subject.id:
                return False
        raise ConcurrencyConflict("could not mark the recovery code used")  # pragma: no cover

    def _attempt_knowledge(
        self,
        subject: Subject,
        challenge: Challenge,
        factor: Factor,
        check: Callable[[], bool],
        credential: Credential | None,
    ) -> Verification:
        now = self.clock.now()
        fields: dict[str, object] = {"factor": factor.name, "challenge_id": challenge.id}
        charged = self._charge(subject, now, **fields)
        try:
            live = self._charge_challenge(challenge)
            ok = check()  # full work, with or without a credential
            if not ok:
                if credential is None:
                    raise NotEnrolled(f"subject has no {factor.name}")
                raise InvalidCode(f"{factor.name} did not match")
            self._withdraw(live.id, live.version)
        except VerificationFailed as exc:
            self._failed(subject, charged, exc, **fields)
            raise
        self._succeeded(subject, charged)
        return self._verified(
            subject,
            factor,
            challenge.id,
            None if credential is None else credential.id,
            now,
            recovery=getattr(factor, "purpose", "fallback") == "recovery",
        )
