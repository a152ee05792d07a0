"""The core records of mfakit, as frozen dataclasses.

Records are values: every change produces a new record whose ``version`` is one higher, and
a store writes it only if the stored version is still the previous one (see
:class:`mfakit.typing.Store`). No record's ``repr`` shows secret material (SECURITY.md 22):
encrypted blobs and keyed hashes are excluded from ``repr`` as well, since neither is any
use in a log line.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import re
import secrets
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final, TypeVar

from mfakit.exceptions import InvalidInput, InvalidType

__all__ = [
    "Challenge",
    "Changes",
    "Credential",
    "CredentialStatus",
    "Event",
    "EventType",
    "FactorKind",
    "LockState",
    "QuotaState",
    "Subject",
    "SubjectRecords",
    "Verification",
    "new_id",
    "validate_actor",
    "validate_id",
]

_T = TypeVar("_T")
_EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})
_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MAX_SUBJECT_FIELD: Final = 255
_MAX_EMAIL: Final = 254  # RFC 5321 section 4.5.3.1.3 path limit
# C0 and C1 controls (U+0085 NEL is a line break to Python) and the Unicode separators.
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _builder(cls: type[_T]) -> Callable[..., _T]:
    """A positional constructor for a frozen slotted record that skips ``__init__``.

    The ``__init__`` of a frozen dataclass sets every field through
    ``object.__setattr__``; on the verification hot path that is a measurable share of the
    time (``benchmarks/``). This builder sets the slots through their descriptors, in a
    function generated once per class, the way :mod:`dataclasses` generates ``__init__``.
    It skips ``__post_init__``, so it only derives records from already validated ones.
    """
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    namespace.update({f"_set_{n}": cls.__dict__[n].__set__ for n in names})
    body = "".join(f"    _set_{n}(record, {n})\n" for n in names)
    source = f"def build({', '.join(names)}):\n    record = _new(_cls)\n{body}    return record\n"
    exec(source, namespace)  # noqa: S102 - fixed source built from the class's own fields
    build: Callable[..., _T] = namespace["build"]
    return build


def _empty() -> Mapping[str, Any]:
    return _EMPTY


def new_id(prefix: str) -> str:
    """A fresh unguessable identifier such as ``ch_3q2...`` (128 bits from ``secrets``)."""
    return f"{prefix}_{secrets.token_urlsafe(16)}"


def validate_id(value: object, what: str) -> str:
    """Check an identifier that arrived from outside before it reaches a store.

    Raises:
        InvalidType: If it is not ``str``.
        InvalidInput: If it is empty, longer than 64 characters or uses other characters
            than ``A-Z a-z 0-9 _ -``.
    """
    if not isinstance(value, str):
        raise InvalidType(f"{what} must be str, not {type(value).__name__}")
    if _ID_PATTERN.fullmatch(value) is None:
        raise InvalidInput(f"{what} is not a valid identifier")
    return value


def validate_actor(value: object) -> str:
    """Check who performs an administrative action (recorded in audit events).

    Raises:
        InvalidType: If it is not ``str``.
        InvalidInput: If it is blank, longer than 255 characters or holds control
            characters (which could forge lines in a text audit log).
    """
    if not isinstance(value, str):
        raise InvalidType(f"actor must be str, not {type(value).__name__}")
    if not value.strip() or len(value) > _MAX_SUBJECT_FIELD or _CONTROL.search(value):
        raise InvalidInput("actor must be 1 to 255 printable characters")
    return value


def _check_text(value: object, what: str, *, limit: int, optional: bool) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise InvalidType(f"Subject.{what} must be str, not {type(value).__name__}")
    if not value.strip() or len(value) > limit:
        raise InvalidInput(f"Subject.{what} must be 1 to {limit} characters, not blank")
    if _CONTROL.search(value):
        # CR/LF would let a value forge e-mail headers later (SECURITY.md 40).
        raise InvalidInput(f"Subject.{what} must not contain control characters")


class FactorKind(str, enum.Enum):
    """What a factor proves: something you have, or something you know."""

    POSSESSION = "possession"
    KNOWLEDGE = "knowledge"


class CredentialStatus(str, enum.Enum):
    """Lifecycle of a credential: pending until proved with a valid code, then active."""

    PENDING = "pending"
    ACTIVE = "active"


@dataclasses.dataclass(frozen=True, slots=True)
class Subject:
    """Who is authenticating. The host builds one from its own user after the password check.

    Args:
        id: The host's stable identifier for the user, unique within the store.
        tenant: The organisation the user belongs to, if the host is multi-tenant.
        username: Login name; used as the account name in authenticator apps.
        email: Profile e-mail address.
        display_name: Name to greet the user with.
        kind: ``"user"`` or ``"service"`` (machine-to-machine) or any host-defined kind.
        attributes: Extra facts for the policy engine (roles, flags); never secrets.

    Raises:
        InvalidType, InvalidInput: On wrong types, empty or oversized values, or control
            characters (which could inject e-mail headers).
    """

    id: str
    tenant: str | None = None
    username: str | None = None
    email: str | None = None
    display_name: str | None = None
    kind: str = "user"
    attributes: Mapping[str, Any] = dataclasses.field(default_factory=_empty, compare=False)

    def __post_init__(self) -> None:
        _check_text(self.id, "id", limit=_MAX_SUBJECT_FIELD, optional=False)
        _check_text(self.tenant, "tenant", limit=_MAX_SUBJECT_FIELD, optional=True)
        _check_text(self.username, "username", limit=_MAX_SUBJECT_FIELD, optional=True)
        _check_text(self.email, "email", limit=_MAX_EMAIL, optional=True)
        _check_text(self.display_name, "display_name", limit=_MAX_SUBJECT_FIELD, optional=True)
        _check_text(self.kind, "kind", limit=64, optional=False)
        if not isinstance(self.attributes, Mapping):
            raise InvalidType("Subject.attributes must be a mapping")
        object.__setattr__(self, "attributes", MappingProxyType(dict(self.attributes)))

    @property
    def account_name(self) -> str:
        """The name authenticator apps show: username, else e-mail, else id."""
        return self.username or self.email or self.id


@dataclasses.dataclass(frozen=True, slots=True)
class Credential:
    """One enrolled authenticator of a subject (an authenticator app, a phone, ...).

    Attributes:
        id: Unguessable identifier (``cr_...``).
        subject_id: Owner.
        tenant: Owner's tenant, for reports.
        factor: Factor name, such as ``"totp"``.
        label: Human name chosen at enrolment ("Work phone").
        status: Pending until confirmed with a valid code.
        created_at: Enrolment start.
        expires_at: For a pending credential, when the enrolment lapses.
        confirmed_at: When it became active.
        last_used_at: Last successful verification.
        counter: Factor-specific monotonic counter. For TOTP, the last accepted time step
            (``-1`` before any): a code is accepted only for a later step (RFC 6238 5.2).
        params: Non-secret parameters (algorithm, digits, period, ...).
        secret: AES-GCM blob from the :class:`~mfakit.Keyring`, bound to this record's id,
            subject and factor. Never shown by ``repr``.
        version: Optimistic-concurrency version; see :class:`mfakit.typing.Store`.
    """

    id: str
    subject_id: str
    tenant: str | None
    factor: str
    label: str
    status: CredentialStatus
    created_at: dt.datetime
    expires_at: dt.datetime | None = None
    confirmed_at: dt.datetime | None = None
    last_used_at: dt.datetime | None = None
    counter: int = -1
    params: Mapping[str, Any] = dataclasses.field(default_factory=_empty, hash=False)
    secret: bytes = dataclasses.field(default=b"", repr=False)
    version: int = 1

    def __post_init__(self) -> None:
        # Records are shared (MemoryStore hands out the stored object): a plain dict here
        # would let a caller rewrite a stored credential without a versioned write.
        if type(self.params) is not MappingProxyType:
            object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    @property
    def active(self) -> bool:
        """True once the enrolment has been confirmed."""
        return self.status is CredentialStatus.ACTIVE

    def accepted(self, counter: int, now: dt.datetime) -> Credential:
        """The next version after a successful code for ``counter`` (now active).

        Built with :func:`_builder`: this runs on every verification.
        """
        return _build_credential(
            self.id,
            self.subject_id,
            self.tenant,
            self.factor,
            self.label,
            CredentialStatus.ACTIVE,
            self.created_at,
            None,
            self.confirmed_at or now,
            now,
            counter,
            self.params,
            self.secret,
            self.version + 1,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Challenge:
    """One pending request for a subject to prove a factor.

    A challenge is bound to its subject: presenting its id for any other subject fails as
    if it did not exist. It is single-use (deleted on success), expires, and limits the
    attempts made against it (on top of the subject-wide lockout).

    Attributes:
        credential_id: The credential it targets, or ``None`` for "any active credential of
            the factor" (TOTP with several apps enrolled).
        code_hash: For delivered codes, a keyed hash of the code; never shown by ``repr``.
        sends: How many codes were sent for it (delivered factors).
        resend_at: Earliest time a new code may be sent (delivered factors).
        destination_hint: Masked destination for display ("+61 4•• ••• 678").
        prompts: What the subject is asked (secret-question ids), the same every time.
    """

    id: str
    subject_id: str
    tenant: str | None
    factor: str
    created_at: dt.datetime
    expires_at: dt.datetime
    max_attempts: int
    attempts: int = 0
    credential_id: str | None = None
    code_hash: bytes = dataclasses.field(default=b"", repr=False)
    sends: int = 0
    resend_at: dt.datetime | None = None
    destination_hint: str | None = None
    prompts: tuple[str, ...] = ()
    version: int = 1

    def charged(self) -> Challenge:
        """The next version with one more attempt used (hot path: no ``replace``)."""
        return _build_challenge(
            self.id,
            self.subject_id,
            self.tenant,
            self.factor,
            self.created_at,
            self.expires_at,
            self.max_attempts,
            self.attempts + 1,
            self.credential_id,
            self.code_hash,
            self.sends,
            self.resend_at,
            self.destination_hint,
            self.prompts,
            self.version + 1,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class LockState:
    """A subject's brute-force bookkeeping, shared by every factor (SECURITY.md 12, 17).

    Attributes:
        subject_id: Whose state this is.
        failures: Consecutive failed attempts since the last success or unlock. Attempts
            are charged *before* the comparison (SECURITY.md 14).
        locked_until: End of the current temporary lock, if any.
        suspended: Locked until an administrator unlocks.
        lockouts: How many temporary locks so far; drives the growing back-off.
        version: ``0`` for a state never stored.
    """

    subject_id: str
    failures: int = 0
    locked_until: dt.datetime | None = None
    suspended: bool = False
    lockouts: int = 0
    version: int = 0


_build_credential = _builder(Credential)
_build_challenge = _builder(Challenge)
#: Positional constructor of :class:`Credential` without ``__init__`` (for stores on hot
#: paths): ``params`` must already be a ``MappingProxyType``.
build_credential = _build_credential


@dataclasses.dataclass(frozen=True, slots=True)
class QuotaState:
    """Sends counted against one quota key within a rolling window (SECURITY.md 28).

    Attributes:
        key: An opaque key: a keyed hash of the destination (so a dump holds no phone
            number or address), or a subject or tenant id, with a scope prefix.
        sent: Times of the sends still inside the window, oldest first.
        version: ``0`` for a state never stored.
    """

    key: str
    sent: tuple[dt.datetime, ...] = ()
    version: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class SubjectRecords:
    """One subject's records, read under the subject's lock by :meth:`Store.update_subject`.

    Attributes:
        lock: The subject's lock state (version ``0`` if none is stored).
        credentials: Every credential of the subject, pending and active, oldest first.
        challenge: The challenge asked for, if it exists and belongs to the subject.
    """

    lock: LockState
    credentials: tuple[Credential, ...]
    challenge: Challenge | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Changes:
    """What one :meth:`Store.update_subject` unit writes: all of it, or none of it.

    Each record is a conditional write under the store's atomic contract (version ``v``
    replaces the stored version ``v - 1``; version ``1`` inserts), and every record must
    belong to the unit's subject.

    Attributes:
        lock: The subject's new lock state, or ``None`` to leave it.
        credential: One of the subject's credentials, new or advanced.
        challenge: The subject's challenge, updated (``challenge.version`` stored + 1).
        withdraw: The subject's challenge to delete, at exactly this stored version.
    """

    lock: LockState | None = None
    credential: Credential | None = None
    challenge: Challenge | None = None
    withdraw: Challenge | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Verification:
    """Evidence that a subject proved a factor. Returned by every successful verification.

    Attributes:
        subject_id: Who proved it.
        tenant: Their tenant.
        factor: Which factor (``"totp"``, ...).
        credential_id: Which credential matched (``None`` for a code sent to the
            subject's profile e-mail address).
        challenge_id: The challenge it answered, if any.
        verified_at: Server time of the verification.
        kind: Possession or knowledge; a knowledge factor on top of a password is never MFA
            (NIST SP 800-63B), which the policy engine uses.
        recovery: ``True`` after a recovery factor (PIN, recovery code): the subject got
            in without a device and must set up a factor again.
    """

    subject_id: str
    tenant: str | None
    factor: str
    credential_id: str | None
    challenge_id: str | None
    verified_at: dt.datetime
    kind: FactorKind = FactorKind.POSSESSION
    recovery: bool = False


build_lock_state = _builder(LockState)
build_verification = _builder(Verification)


class EventType(str, enum.Enum):
    """Every state change mfakit reports (ISM-1683: log successes, failures, changes)."""

    ENROLLMENT_STARTED = "enrollment_started"
    ENROLLMENT_CONFIRMED = "enrollment_confirmed"
    CREDENTIAL_REMOVED = "credential_removed"
    CHALLENGE_CREATED = "challenge_created"
    CODE_SENT = "code_sent"
    SEND_REFUSED = "send_refused"
    DELIVERY_FAILED = "delivery_failed"
    VERIFIED = "verified"
    FAILED = "failed"
    LOCKED = "locked"
    UNLOCKED = "unlocked"
    KEYS_ROTATED = "keys_rotated"
    POLICY_DECIDED = "policy_decided"
    RECOVERY_USED = "recovery_used"
    RESET = "reset"
    ADMIN_DENIED = "admin_denied"


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    """An audit event. Carries identifiers and reasons, never a code or secret.

    Attributes:
        type: What happened.
        at: Server time.
        subject_id: Whose record changed (``None`` for store-wide events).
        tenant: Their tenant.
        factor: Factor involved, if any.
        credential_id: Credential involved, if any.
        challenge_id: Challenge involved, if any.
        actor: Who acted, when not the subject (an administrator, ``"system"``).
        reason: Machine-readable reason for failures (``"invalid_code"``, ``"replayed"``,
            ``"expired"``, ``"locked"`` ...).
        detail: Further non-secret facts.
    """

    type: EventType
    at: dt.datetime
    subject_id: str | None
    tenant: str | None = None
    factor: str | None = None
    credential_id: str | None = None
    challenge_id: str | None = None
    actor: str | None = None
    reason: str | None = None
    detail: Mapping[str, Any] = dataclasses.field(default_factory=_empty, hash=False)

    def __post_init__(self) -> None:
        if type(self.detail) is not MappingProxyType:
            object.__setattr__(self, "detail", MappingProxyType(dict(self.detail)))
