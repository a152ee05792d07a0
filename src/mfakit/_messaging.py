"""The facade's half for codes sent by message (SMS, e-mail): quotas, sending, resending.

Kept apart from ``_service`` so each file reads as one story; :class:`~mfakit.MFA` inherits
it. Order of work for every send (SECURITY.md 9, 10, 28):

1. refuse early (cooldown, sends per challenge) without changing anything;
2. take the send quotas (destination, subject, tenant), each one conditional write, giving
   back the ones already taken if a later one refuses;
3. store the challenge with the *keyed hash* of a fresh code (a resend replaces the hash,
   so the previous code dies at once);
4. only then hand the message to the sender; if the sender fails, withdraw the challenge,
   so nothing half-done stays usable, and raise :class:`~mfakit.DeliveryError`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
from typing import Any

from mfakit import _quota, _throttle
from mfakit._models import (
    Challenge,
    Credential,
    CredentialStatus,
    EventType,
    QuotaState,
    Subject,
    Verification,
    new_id,
    validate_id,
)
from mfakit._parts import MAX_WRITE_RETRIES, FacadeParts
from mfakit.exceptions import (
    ChallengeNotFound,
    ConcurrencyConflict,
    ConfigurationError,
    CredentialNotFound,
    DeliveryError,
    ExpiredCode,
    InvalidCode,
    InvalidInput,
    NotEnrolled,
    QuotaExceeded,
    ResendTooSoon,
    SendLimitReached,
    SendRefused,
    VerificationFailed,
)
from mfakit.factors._delivered import DeliveredCodeFactor, Destination
from mfakit.hazmat.compare import normalize_code

__all__ = ["CodeEnrollment", "MessagingMixin"]

_log = logging.getLogger("mfakit")


@dataclasses.dataclass(frozen=True, slots=True)
class CodeEnrollment:
    """A pending SMS or e-mail enrolment: a code is on its way.

    Show the hint, ask for the code, then call :meth:`mfakit.MFA.confirm` with :attr:`id`.
    ``mfa.resend(subject, enrollment.challenge.id)`` sends a new code.

    Attributes:
        id: The pending credential's id.
        credential: The pending credential (number or address encrypted).
        challenge: The challenge carrying the code.
        destination_hint: Masked number or address.
        expires_at: When the pending enrolment lapses.
    """

    id: str
    credential: Credential
    challenge: Challenge
    destination_hint: str
    expires_at: dt.datetime


class MessagingMixin(FacadeParts):
    """Delivered-code operations of :class:`~mfakit.MFA`."""

    # quotas ------------------------------------------------------------------------------
    def _quota_keys(
        self, factor: DeliveredCodeFactor, subject: Subject, destination: Destination
    ) -> list[tuple[str, _quota.SendQuota, str]]:
        quotas = factor.quotas
        keys = [
            (
                factor.quota_key(self.keyring, destination.address),
                quotas.per_destination,
                "destination",
            ),
            (f"{factor.name}:subject:{subject.id}", quotas.per_subject, "subject"),
        ]
        if quotas.per_tenant is not None and subject.tenant is not None:
            keys.append((f"{factor.name}:tenant:{subject.tenant}", quotas.per_tenant, "tenant"))
        return keys

    def _take_quotas(
        self,
        factor: DeliveredCodeFactor,
        subject: Subject,
        destination: Destination,
        now: dt.datetime,
    ) -> list[str]:
        """Take one slot of each quota, all or nothing (SECURITY.md 28)."""
        store = self.store
        taken: list[str] = []
        try:
            for key, quota, scope in self._quota_keys(factor, subject, destination):

                def take(
                    state: QuotaState, quota: _quota.SendQuota = quota, scope: str = scope
                ) -> QuotaState:
                    return _quota.take(state, quota, now, scope=scope)

                self._update(functools.partial(store.get_quota, key), take, store.put_quota)
                taken.append(key)
        except QuotaExceeded as exc:
            self._release_quotas(taken, now)
            self._emit(
                EventType.SEND_REFUSED, subject, factor=factor.name, reason=type(exc).__name__
            )
            raise
        return taken

    def _release_quotas(self, keys: list[str], now: dt.datetime) -> None:
        store = self.store
        for key in keys:
            self._update(
                functools.partial(store.get_quota, key),
                functools.partial(_quota.release, sent_at=now),
                store.put_quota,
            )

    # sending -----------------------------------------------------------------------------
    def _withdraw(self, challenge_id: str, version: int | None = None) -> None:
        """Delete a challenge whatever its version.

        Used after a failed delivery, and after a knowledge factor's success (TOTP
        challenges are deleted inside their store unit): a challenge is single-use,
        and a concurrent losing attempt may have bumped its version in between. With the
        ``version`` the caller just wrote, the usual case is one conditional delete and no
        read; only if that version is gone is the challenge read again.
        """
        store = self.store
        if version is not None and store.delete_challenge(challenge_id, version=version):
            return
        for _ in range(MAX_WRITE_RETRIES):
            current = store.get_challenge(challenge_id)
            if current is None or store.delete_challenge(challenge_id, version=current.version):
                return
        raise ConcurrencyConflict("could not withdraw the challenge")  # pragma: no cover

    def _transmit(
        self,
        factor: DeliveredCodeFactor,
        subject: Subject,
        destination: Destination,
        challenge: Challenge,
        code: str,
        now: dt.datetime,
    ) -> None:
        failure: str | None = None
        try:
            outgoing = factor.compose(subject, destination, code, now)
        except BaseException:
            # A host template that fails must not leave a usable challenge behind either.
            self._withdraw(challenge.id)
            raise
        try:
            factor.transmit(outgoing)
        except Exception as exc:
            # The provider's message may quote the text (and the code), so only its type
            # is kept, and the DeliveryError is raised outside this block so that it does
            # not even carry the provider's exception as its __context__.
            failure = type(exc).__name__
        if failure is not None:
            self._withdraw(challenge.id)
            _log.warning("mfakit: %s delivery failed (%s)", factor.name, failure)
            self._emit(
                EventType.DELIVERY_FAILED,
                subject,
                factor=factor.name,
                challenge_id=challenge.id,
                reason=failure,
            )
            raise DeliveryError(
                f"{factor.name} sender raised {failure}; the challenge was withdrawn"
            )
        self._emit(
            EventType.CODE_SENT,
            subject,
            factor=factor.name,
            challenge_id=challenge.id,
            credential_id=challenge.credential_id,
            detail={"sends": challenge.sends, "destination": destination.hint},
        )

    def _open_code_challenge(
        self,
        factor: DeliveredCodeFactor,
        subject: Subject,
        destination: Destination,
        now: dt.datetime,
        *,
        challenge_id: str | None = None,
    ) -> Challenge:
        self._take_quotas(factor, subject, destination, now)
        code = factor.new_code()
        cid = challenge_id or new_id("ch")
        challenge = Challenge(
            id=cid,
            subject_id=subject.id,
            tenant=subject.tenant,
            factor=factor.name,
            created_at=now,
            expires_at=now + factor.code_ttl,
            max_attempts=factor.max_attempts,
            attempts=0,
            credential_id=destination.credential_id,
            code_hash=factor.hash_code(self.keyring, cid, code),
            sends=1,
            resend_at=now + factor.resend_cooldown,
            destination_hint=destination.hint,
        )
        if not self.store.put_challenge(challenge):
            raise ConcurrencyConflict("challenge id collision")  # pragma: no cover
        self._transmit(factor, subject, destination, challenge, code, now)
        return challenge

    def _delivered(self, name: str) -> DeliveredCodeFactor:
        factor = self.factor(name)
        if not isinstance(factor, DeliveredCodeFactor):
            raise ConfigurationError(f"factor {name!r} does not send codes")
        return factor

    # enrolment ---------------------------------------------------------------------------
    def _enroll_delivered(self, subject: Subject, setup: Any) -> CodeEnrollment:
        factor = self._delivered(setup.factor)
        now = self.clock.now()
        challenge_id = new_id("ch")
        credential, destination = factor.begin(
            subject, setup, now=now, keyring=self.keyring, challenge_id=challenge_id
        )
        if not self.store.put_credential(credential):
            raise ConcurrencyConflict("credential id collision")  # pragma: no cover
        try:
            challenge = self._open_code_challenge(
                factor, subject, destination, now, challenge_id=challenge_id
            )
        except BaseException:
            # Nothing half-done: no pending credential without its code.
            self.store.delete_credential(credential.id, version=credential.version)
            raise
        self._emit(
            EventType.ENROLLMENT_STARTED, subject, factor=factor.name, credential_id=credential.id
        )
        return CodeEnrollment(
            id=credential.id,
            credential=credential,
            challenge=challenge,
            destination_hint=destination.hint,
            expires_at=credential.expires_at or challenge.expires_at,
        )

    def _confirm_delivered(
        self, subject: Subject, credential: Credential, code: str, now: dt.datetime
    ) -> Credential:
        factor = self._delivered(credential.factor)
        challenge_id = str(credential.params.get("challenge_id", ""))
        challenge = self.store.get_challenge(challenge_id) if challenge_id else None
        if challenge is None or challenge.subject_id != subject.id:
            raise ChallengeNotFound("the enrolment's code is no longer valid; start again")
        self._verify_code(factor, subject, challenge, code, now, credential_id=credential.id)
        store = self.store

        def activate(current: Credential) -> Credential | None:
            if current.active:
                return None
            return dataclasses.replace(
                current,
                status=CredentialStatus.ACTIVE,
                confirmed_at=now,
                expires_at=None,
                version=current.version + 1,
            )

        active = self._update(
            lambda: store.get_credential(credential.id), activate, store.put_credential
        )
        if active is None:
            raise CredentialNotFound("the pending enrolment was removed or confirmed meanwhile")
        if factor.replaces_on_confirm:
            # A new phone or address replaces the old one, but only once it is proven.
            for other in store.list_credentials(subject.id):
                replaced = other.factor == factor.name and other.active and other.id != active.id
                if replaced and store.delete_credential(other.id, version=other.version):
                    self._emit(
                        EventType.CREDENTIAL_REMOVED,
                        subject,
                        factor=factor.name,
                        credential_id=other.id,
                        reason="replaced",
                    )
        return active

    def _refuse_if_locked(self, subject: Subject, now: dt.datetime) -> None:
        """No code is sent to a locked subject: it could not be used, and it costs money."""
        _throttle.check(self.store.get_lock_state(subject.id), now)

    # sign-in -----------------------------------------------------------------------------
    def _challenge_delivered(
        self, subject: Subject, factor: DeliveredCodeFactor, credential_id: str | None
    ) -> Challenge:
        self._refuse_if_locked(subject, self.clock.now())
        credential: Credential | None = None
        if credential_id is not None:
            credential = self._owned_credential(subject, credential_id)
            if credential.factor != factor.name or not credential.active:
                raise CredentialNotFound("credential is not an active one of that factor")
        else:
            active = [
                c
                for c in self.store.list_credentials(subject.id)
                if c.active and c.factor == factor.name
            ]
            credential = active[-1] if active else None
        destination = factor.destination(subject, credential, self.keyring)
        if destination is None:
            return self._open_silent_challenge(factor, subject, self.clock.now())
        return self._open_code_challenge(factor, subject, destination, self.clock.now())

    def _open_silent_challenge(
        self, factor: DeliveredCodeFactor, subject: Subject, now: dt.datetime
    ) -> Challenge:
        """A challenge for a subject with nowhere to send: stored, never sent.

        Its answers match a real challenge's (verify fails like a wrong code, resend
        follows the same cooldown), so the endpoints do not reveal which factors a subject
        has (SECURITY.md 36). Only the missing destination hint differs, and a host shows
        the hint only to the signed-in subject.
        """
        challenge = Challenge(
            id=new_id("ch"),
            subject_id=subject.id,
            tenant=subject.tenant,
            factor=factor.name,
            created_at=now,
            expires_at=now + factor.code_ttl,
            max_attempts=factor.max_attempts,
            sends=1,
            resend_at=now + factor.resend_cooldown,
        )
        if not self.store.put_challenge(challenge):
            raise ConcurrencyConflict("challenge id collision")  # pragma: no cover
        self._emit(
            EventType.CHALLENGE_CREATED,
            subject,
            factor=factor.name,
            challenge_id=challenge.id,
            reason="no_destination",
        )
        return challenge

    def resend(self, subject: Subject, challenge_id: str) -> Challenge:
        """Send a new code for an open SMS or e-mail challenge; the previous code dies.

        Allowed once the cooldown has passed (``challenge.resend_at``) and while the
        challenge has sends left, also after its code expired (the "Resend" link of an
        expired code). The new code gets a full lifetime and a fresh attempt budget.

        Returns:
            The updated challenge (new ``expires_at``, ``resend_at``, ``sends``).

        Raises:
            ChallengeNotFound: Unknown, used or another subject's challenge.
            ExpiredCode: The challenge belongs to an enrolment that has lapsed.
            LockedOut: The subject is locked; nothing is sent.
            InvalidInput: The challenge is of a factor that sends nothing (TOTP).
            ResendTooSoon: Before ``resend_at`` (``retry_at`` says when).
            SendLimitReached: The challenge has used all its sends.
            QuotaExceeded: A send quota is used up (``retry_at`` says when).
            DeliveryError: The sender failed; the challenge was withdrawn.
        """
        subject = self._subject(subject)
        validate_id(challenge_id, "challenge_id")
        store = self.store
        challenge = store.get_challenge(challenge_id)
        if challenge is None or challenge.subject_id != subject.id:
            raise ChallengeNotFound("no open challenge with that id for this subject")
        factor = self.factor(challenge.factor)
        if not isinstance(factor, DeliveredCodeFactor):
            raise InvalidInput(f"a {factor.name} challenge sends no code, so none can be resent")
        now = self.clock.now()
        self._refuse_if_locked(subject, now)
        self._check_resend(factor, subject, challenge, now)
        credential = None
        if challenge.credential_id is not None:
            credential = store.get_credential(challenge.credential_id)
            if credential is None or credential.subject_id != subject.id:
                raise ChallengeNotFound("the challenge's credential was removed")
            lapsed = credential.expires_at is not None and now >= credential.expires_at
            if not credential.active and lapsed:
                # confirm() would refuse any code now: sending one would be paid for nothing.
                raise ExpiredCode("the pending enrolment has expired; start again")
        destination = factor.destination(subject, credential, self.keyring)
        if destination is None:
            # A silent challenge: renew it exactly like a real one, but send nothing.
            renewed = dataclasses.replace(
                challenge,
                sends=challenge.sends + 1,
                resend_at=now + factor.resend_cooldown,
                expires_at=now + factor.code_ttl,
                attempts=0,
                version=challenge.version + 1,
            )
            if not store.put_challenge(renewed):
                raise ResendTooSoon("a concurrent resend won", retry_at=renewed.resend_at)
            return renewed
        taken = self._take_quotas(factor, subject, destination, now)
        code = factor.new_code()
        for _ in range(MAX_WRITE_RETRIES):
            try:
                self._check_resend(factor, subject, challenge, now)
            except SendRefused:
                self._release_quotas(taken, now)
                raise
            renewed = dataclasses.replace(
                challenge,
                code_hash=factor.hash_code(self.keyring, challenge.id, code),
                sends=challenge.sends + 1,
                resend_at=now + factor.resend_cooldown,
                expires_at=now + factor.code_ttl,
                attempts=0,
                version=challenge.version + 1,
            )
            if store.put_challenge(renewed):
                break
            current = store.get_challenge(challenge.id)
            if current is None:
                self._release_quotas(taken, now)
                raise ChallengeNotFound("the challenge was used or withdrawn meanwhile")
            challenge = current
        else:  # pragma: no cover
            raise ConcurrencyConflict("could not renew the challenge")
        self._transmit(factor, subject, destination, renewed, code, now)
        return renewed

    def _check_resend(
        self,
        factor: DeliveredCodeFactor,
        subject: Subject,
        challenge: Challenge,
        now: dt.datetime,
    ) -> None:
        refusal: SendRefused | None = None
        if challenge.sends >= factor.max_sends:
            refusal = SendLimitReached(f"challenge already sent {challenge.sends} codes")
        elif challenge.resend_at is not None and now < challenge.resend_at:
            refusal = ResendTooSoon(
                f"resend allowed from {challenge.resend_at.isoformat()}",
                retry_at=challenge.resend_at,
            )
        if refusal is not None:
            self._emit(
                EventType.SEND_REFUSED,
                subject,
                factor=factor.name,
                challenge_id=challenge.id,
                reason=type(refusal).__name__,
            )
            raise refusal

    def _verify_delivered(
        self,
        factor: DeliveredCodeFactor,
        subject: Subject,
        challenge: Challenge,
        code: str,
        now: dt.datetime,
    ) -> Verification:
        if challenge.credential_id is not None:
            credential = self.store.get_credential(challenge.credential_id)
            if credential is None or credential.subject_id != subject.id or not credential.active:
                # A pending enrolment's challenge is answered through confirm(), not here.
                raise ChallengeNotFound("the challenge's credential is not active")
        self._verify_code(factor, subject, challenge, code, now)
        return self._verified(subject, factor, challenge.id, challenge.credential_id, now)

    def _verify_code(
        self,
        factor: DeliveredCodeFactor,
        subject: Subject,
        challenge: Challenge,
        code: str,
        now: dt.datetime,
        *,
        credential_id: str | None = None,
    ) -> None:
        """Charge, compare in constant time, and claim the challenge: exactly one winner."""
        normalized = normalize_code(code, digits=factor.digits)  # malformed: nothing charged
        if now >= challenge.expires_at:
            raise self._expired(
                subject,
                "the code has expired; ask for a new one",
                factor=factor.name,
                challenge_id=challenge.id,
            )
        fields: dict[str, object] = {"factor": factor.name, "challenge_id": challenge.id}
        if credential_id is not None:
            fields["credential_id"] = credential_id
        charged = self._charge(subject, now, **fields)
        try:
            live = self._charge_challenge(challenge)
            if not live.code_hash:  # a silent challenge: the same keyed-hash work, then fail
                factor.hash_code(self.keyring, live.id, normalized)
                raise NotEnrolled(f"subject has no {factor.name} destination")
            if not factor.code_matches(self.keyring, live.id, live.code_hash, normalized):
                raise InvalidCode("code does not match the one sent")
            self._claim(live)
        except VerificationFailed as exc:
            self._failed(subject, charged, exc, **fields)
            raise
        self._succeeded(subject, charged)

    def _claim(self, live: Challenge) -> None:
        """Delete the challenge we verified; of concurrent right answers exactly one wins.

        The code was checked against ``live.code_hash``; if a resend replaced it since, the
        code is dead. Otherwise we delete whatever version is current (a concurrent wrong
        attempt may have bumped it): whoever deletes it wins, the others find it gone.
        """
        store = self.store
        for _ in range(MAX_WRITE_RETRIES):
            current = store.get_challenge(live.id)
            if current is None:
                raise ChallengeNotFound("the code was already used")
            if current.code_hash != live.code_hash:
                raise InvalidCode("a newer code replaced this one")
            if store.delete_challenge(current.id, version=current.version):
                return
        raise ConcurrencyConflict("could not claim the challenge")  # pragma: no cover
