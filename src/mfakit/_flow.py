"""The sign-in flow: a state machine a web framework follows without being able to skip a step.

After the host's password check, :meth:`SignInFlow.start` asks the policy what the subject
must do and returns a *token*: the flow's state, signed with a keyed MAC from the keyring.
The host keeps the token in its session and hands it back at every step; each step checks
the signature, the subject, the session binding and the expiry, and that the step is the
one the state allows, and returns a new token. Steps::

    password accepted ─► review details ─► enrol ─► enrol recovery ─► challenge ─► complete
                           (if asked)     (if none)  (if required)     │  ▲
                                                                       │  └ fallback / recovery
                                          recovery used ◄──────────────┘
                                          (then: enrol again)

Guarantees (SECURITY.md 31-33, 35):

* the state holds identifiers and times only: never a code, secret or password;
* a pending state lives at most ten minutes (configurable); a complete one no longer than
  the policy's session lifetime;
* editing a token breaks its MAC; a token made for one subject or session is refused for
  another; an old token only ever takes the subject back, never forward;
* a password reset or a recovery never produces a complete session by itself: recovery
  leads to enrolling a factor again;
* enrolment is only possible in an enrolment step, so nothing can be enrolled while the
  second step of a sign-in is pending.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import enum
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from mfakit._models import Challenge, Credential, FactorKind, Subject, Verification, new_id
from mfakit._policy import Context, Decision, SessionStatus
from mfakit.exceptions import (
    ConfigurationError,
    FlowExpired,
    FlowStepError,
    InvalidFlowToken,
    InvalidType,
)

if TYPE_CHECKING:
    from mfakit._service import MFA
    from mfakit.factors._base import FactorSetup

__all__ = ["FlowState", "FlowStep", "SignInFlow"]

_PURPOSE: Final = b"mfakit/flow/v1"
_PREFIX: Final = "mfa1"
_MAX_TOKEN: Final = 4096


class FlowStep(str, enum.Enum):
    """Where a sign-in stands."""

    REVIEW = "review"
    ENROLL = "enroll"
    ENROLL_RECOVERY = "enroll_recovery"
    CHALLENGE = "challenge"
    COMPLETE = "complete"


@dataclasses.dataclass(frozen=True, slots=True)
class FlowState:
    """The state a token carries: identifiers and times only (SECURITY.md 31).

    Attributes:
        flow_id: This sign-in.
        subject_id: Whose sign-in.
        step: What the subject must do next.
        started_at: When the password was accepted.
        expires_at: When this state stops being accepted.
        mfa_at: When a second factor was verified (``None`` before).
        factor: The factor verified.
        recovered: The subject got in with a recovery factor and must enrol again.
        challenge_id: The open challenge of this sign-in, if any.
        binding: A keyed hash of the host's session binding (never the value itself).
        seq: Step counter, for logs.
        pending_id: The credential being enrolled in this step, if any: only that one can
            complete an enrolment step.
    """

    flow_id: str
    subject_id: str
    step: FlowStep
    started_at: dt.datetime
    expires_at: dt.datetime
    mfa_at: dt.datetime | None = None
    factor: str | None = None
    recovered: bool = False
    challenge_id: str | None = None
    binding: str = ""
    seq: int = 0
    pending_id: str | None = None

    @property
    def complete(self) -> bool:
        """True once the sign-in needs nothing more."""
        return self.step is FlowStep.COMPLETE


class SignInFlow:
    """Drives one sign-in through the policy's steps with a signed, serialisable state.

    Args:
        mfa: The facade (its keyring signs the tokens, its policy decides the steps).
        pending_ttl: Lifetime of a state that is not complete (at most 10 minutes by
            default, SECURITY.md 31).
    """

    def __init__(self, mfa: MFA, *, pending_ttl: dt.timedelta = dt.timedelta(minutes=10)) -> None:
        if not isinstance(pending_ttl, dt.timedelta) or pending_ttl <= dt.timedelta(0):
            raise ConfigurationError("pending_ttl must be a positive timedelta")
        self.mfa = mfa
        self.pending_ttl = pending_ttl

    # tokens ------------------------------------------------------------------------------
    def _bind(self, binding: str) -> str:
        if not isinstance(binding, str) or len(binding) > 512:
            raise InvalidType("session binding must be a str of at most 512 characters")
        if not binding:
            return ""
        return self.mfa.keyring.mac(binding.encode(), purpose=b"mfakit/flow-binding").hex()

    def _binding_matches(self, stored: str, binding: str) -> bool:
        """Check the session binding against its stored tag, under any keyring key.

        Verified rather than recomputed, so that adding a new primary key does not log
        out every bound session.
        """
        if not isinstance(binding, str) or len(binding) > 512:
            raise InvalidType("session binding must be a str of at most 512 characters")
        if not stored or not binding:
            return stored == "" and binding == ""
        try:
            tag = bytes.fromhex(stored)
        except ValueError:  # pragma: no cover - signed by us
            return False
        return self.mfa.keyring.verify_mac(tag, binding.encode(), purpose=b"mfakit/flow-binding")

    def _seal(self, state: FlowState) -> str:
        body = {
            "f": state.flow_id,
            "s": state.subject_id,
            "t": state.step.value,
            "a": state.started_at.isoformat(),
            "e": state.expires_at.isoformat(),
            "m": None if state.mfa_at is None else state.mfa_at.isoformat(),
            "k": state.factor,
            "r": state.recovered,
            "c": state.challenge_id,
            "b": state.binding,
            "n": state.seq,
            "p": state.pending_id,
        }
        payload = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
        tag = self.mfa.keyring.mac(payload, purpose=_PURPOSE)
        return ".".join((_PREFIX, _b64(payload), _b64(tag)))

    def load(self, subject: Subject, token: str, *, binding: str = "") -> FlowState:
        """Check a token and return its state.

        Raises:
            InvalidFlowToken: Malformed, tampered, signed under an unknown key, made for
                another subject or another session binding.
            FlowExpired: Past its expiry.
        """
        subject = self.mfa._subject(subject)
        if not isinstance(token, str) or len(token) > _MAX_TOKEN:
            raise InvalidFlowToken("flow token must be a str of at most 4096 characters")
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != _PREFIX:
            raise InvalidFlowToken("not a flow token")
        try:
            payload, tag = _unb64(parts[1]), _unb64(parts[2])
        except (binascii.Error, ValueError):
            raise InvalidFlowToken("flow token is not valid base64") from None
        if not self.mfa.keyring.verify_mac(tag, payload, purpose=_PURPOSE):
            raise InvalidFlowToken("flow token signature does not verify")
        try:
            body: dict[str, Any] = json.loads(payload)
            state = FlowState(
                flow_id=str(body["f"]),
                subject_id=str(body["s"]),
                step=FlowStep(body["t"]),
                started_at=dt.datetime.fromisoformat(body["a"]),
                expires_at=dt.datetime.fromisoformat(body["e"]),
                mfa_at=None if body["m"] is None else dt.datetime.fromisoformat(body["m"]),
                factor=body["k"],
                recovered=bool(body["r"]),
                challenge_id=body["c"],
                binding=str(body["b"]),
                seq=int(body["n"]),
                pending_id=body["p"],
            )
        except (KeyError, TypeError, ValueError):  # pragma: no cover - signed by us
            raise InvalidFlowToken("flow token content is malformed") from None
        if state.subject_id != subject.id:
            raise InvalidFlowToken("flow token belongs to another subject")
        if not self._binding_matches(state.binding, binding):
            raise InvalidFlowToken("flow token belongs to another session")
        if self.mfa.clock.now() >= state.expires_at:
            raise FlowExpired("flow token has expired; sign in again")
        return state

    # steps -------------------------------------------------------------------------------
    def _next(
        self, subject: Subject, state: FlowState, now: dt.datetime, **changes: Any
    ) -> tuple[str, FlowState]:
        """Seal the state the policy asks for next."""
        merged = dataclasses.replace(state, **changes)
        decision = self.mfa.evaluate(
            subject,
            Context(
                now=now,
                action="login",
                password_verified_at=merged.started_at,
                mfa_verified_at=merged.mfa_at,
                reviewed_details=merged.step is not FlowStep.REVIEW,
            ),
        )
        step = self._step_for(decision, merged)
        if step is FlowStep.COMPLETE:
            expires = (merged.mfa_at or merged.started_at) + decision.session.lifetime
        else:
            expires = min(now + self.pending_ttl, merged.started_at + self.pending_ttl * 3)
        nxt = dataclasses.replace(merged, step=step, expires_at=expires, seq=merged.seq + 1)
        return self._seal(nxt), nxt

    @staticmethod
    def _step_for(decision: Decision, state: FlowState) -> FlowStep:
        if decision.review_details and state.step is FlowStep.REVIEW:
            return FlowStep.REVIEW
        if state.recovered or decision.enroll:
            return FlowStep.ENROLL
        if state.mfa_at is None and decision.required:
            return FlowStep.CHALLENGE
        if decision.enroll_recovery:
            return FlowStep.ENROLL_RECOVERY
        return FlowStep.COMPLETE

    def start(self, subject: Subject, *, binding: str = "") -> tuple[str, FlowState]:
        """Begin after the host accepted the password. Returns the token and its state.

        Args:
            subject: Who signed in with a password.
            binding: A value tying the token to the host session (for example a hash of
                the session id); the token is refused with any other.
        """
        subject = self.mfa._subject(subject)
        now = self.mfa.clock.now()
        state = FlowState(
            flow_id=new_id("fl"),
            subject_id=subject.id,
            step=FlowStep.REVIEW,
            started_at=now,
            expires_at=now + self.pending_ttl,
            binding=self._bind(binding),
        )
        return self._next(subject, state, now)

    def _expect(self, state: FlowState, *steps: FlowStep) -> None:
        if state.step not in steps:
            names = ", ".join(s.value for s in steps)
            raise FlowStepError(f"the sign-in is at {state.step.value!r}, not at {names}")

    def review_done(
        self, subject: Subject, token: str, *, binding: str = ""
    ) -> tuple[str, FlowState]:
        """The subject reviewed their details."""
        state = self.load(subject, token, binding=binding)
        self._expect(state, FlowStep.REVIEW)
        return self._next(subject, state, self.mfa.clock.now(), step=FlowStep.ENROLL)

    def enroll(
        self, subject: Subject, token: str, setup: FactorSetup | str, *, binding: str = ""
    ) -> tuple[str, Any]:
        """Start an enrolment; allowed only in an enrolment step the policy still asks for.

        Returns a new token naming the credential being enrolled, and the enrolment (what
        :meth:`MFA.enroll` returns). Pass the confirmed credential to :meth:`enrolled`.
        """
        state = self.load(subject, token, binding=binding)
        self._expect(state, FlowStep.ENROLL, FlowStep.ENROLL_RECOVERY)
        # The token may be an old one: ask the policy again (SECURITY.md 35).
        decision = self.mfa.evaluate(subject, Context(now=self.mfa.clock.now()))
        if state.step is FlowStep.ENROLL and not (decision.enroll or state.recovered):
            raise FlowStepError("nothing needs enrolling now; verify a factor instead")
        if state.step is FlowStep.ENROLL_RECOVERY and not decision.enroll_recovery:
            raise FlowStepError("no recovery method needs enrolling now")
        enrollment = self.mfa.enroll(subject, setup)
        pending = dataclasses.replace(state, pending_id=enrollment.id)
        return self._seal(pending), enrollment

    def enrolled(
        self, subject: Subject, token: str, credential: Credential, *, binding: str = ""
    ) -> tuple[str, FlowState]:
        """After :meth:`MFA.confirm` (or a knowledge enrolment): move on.

        A factor just enrolled and confirmed counts as this sign-in's second factor: the
        subject proved possession of it with a code a moment ago.
        """
        state = self.load(subject, token, binding=binding)
        self._expect(state, FlowStep.ENROLL, FlowStep.ENROLL_RECOVERY)
        if not isinstance(credential, Credential):
            raise InvalidType("credential must be a mfakit.Credential")
        if state.pending_id is None or credential.id != state.pending_id:
            # Only what was enrolled in this step: never an old credential (a lost device).
            raise FlowStepError("that credential was not enrolled in this sign-in")
        stored = self.mfa.store.get_credential(credential.id)
        if stored is None or stored.subject_id != state.subject_id or not stored.active:
            raise FlowStepError("that credential is not an active one of this subject")
        now = self.mfa.clock.now()
        possession = self.mfa.factor(stored.factor).kind is FactorKind.POSSESSION
        changes: dict[str, Any] = {"pending_id": None}
        if possession:
            changes["recovered"] = False
        if possession and (state.mfa_at is None or state.recovered):
            changes.update(mfa_at=now, factor=stored.factor)
        return self._next(subject, state, now, **changes)

    def challenge(
        self,
        subject: Subject,
        token: str,
        factor: str,
        *,
        binding: str = "",
        credential_id: str | None = None,
    ) -> tuple[str, Challenge]:
        """Open a challenge for a factor the decision offers (method, fallback, recovery)."""
        state = self.load(subject, token, binding=binding)
        self._expect(state, FlowStep.CHALLENGE)
        decision = self.mfa.evaluate(subject, Context(now=self.mfa.clock.now()))
        offered = (*decision.methods, *decision.fallbacks, *decision.recovery)
        if factor not in offered:
            raise FlowStepError(f"{factor!r} is not offered to this subject now")
        challenge = self.mfa.challenge(subject, factor, credential_id=credential_id)
        return self._seal(dataclasses.replace(state, challenge_id=challenge.id)), challenge

    def verify(
        self, subject: Subject, token: str, code: str, *, binding: str = ""
    ) -> tuple[str, FlowState]:
        """Verify a code for this sign-in's open challenge; on success move on."""
        state = self._open(subject, token, binding)
        proof = self.mfa.verify(subject, state.challenge_id or "", code)
        return self._after(subject, state, proof)

    def answer(
        self, subject: Subject, token: str, answers: Mapping[str, str], *, binding: str = ""
    ) -> tuple[str, FlowState]:
        """Answer this sign-in's secret-questions challenge; on success move on."""
        state = self._open(subject, token, binding)
        proof = self.mfa.answer(subject, state.challenge_id or "", answers)
        return self._after(subject, state, proof)

    def _open(self, subject: Subject, token: str, binding: str) -> FlowState:
        state = self.load(subject, token, binding=binding)
        self._expect(state, FlowStep.CHALLENGE)
        if state.challenge_id is None:
            raise FlowStepError("open a challenge first")
        return state

    def _after(
        self, subject: Subject, state: FlowState, proof: Verification
    ) -> tuple[str, FlowState]:
        now = self.mfa.clock.now()
        if proof.recovery:
            # In through recovery: not a complete session until a factor is set up again.
            return self._next(subject, state, now, recovered=True, challenge_id=None)
        # Only factors the decision offered could be challenged (see challenge()): a
        # knowledge factor gets here only as a configured fallback.
        return self._next(subject, state, now, mfa_at=now, factor=proof.factor, challenge_id=None)

    def session_status(
        self,
        subject: Subject,
        token: str,
        *,
        last_activity_at: dt.datetime,
        binding: str = "",
    ) -> SessionStatus:
        """For a complete sign-in: is the session still valid, and until when?

        Raises:
            FlowStepError: The sign-in is not complete.
        """
        state = self.load(subject, token, binding=binding)
        self._expect(state, FlowStep.COMPLETE)
        limits = self.mfa.evaluate(subject).session
        return limits.check(
            authenticated_at=state.mfa_at or state.started_at,
            last_activity_at=last_activity_at,
            now=self.mfa.clock.now(),
        )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


_B64_CHARS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _unb64(text: str) -> bytes:
    """Strict unpadded base64url: one text per byte string, so tokens are not malleable."""
    if not _B64_CHARS.issuperset(text):
        raise ValueError("not unpadded base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError("non-canonical base64url")
    return data
