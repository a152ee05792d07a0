"""Recovery codes: a batch of single-use codes shown once, for when every device is lost.

Each code carries 120 random bits from :mod:`secrets` (24 base32 characters, shown in
groups of four). At 112 bits or more a fast keyed hash is enough (NIST SP 800-63B 5.1.2.2;
ASVS 5 6.5.2; SECURITY.md 20): the codes are stored as HMACs under the keyring, never in
clear, and each is usable once, enforced by a conditional write of the used set, so two
concurrent uses of one code cannot both succeed. Generating a new batch replaces the old.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import secrets
from typing import TYPE_CHECKING, ClassVar, Final, Literal

from mfakit._models import Credential, CredentialStatus, FactorKind, Subject, new_id
from mfakit.exceptions import ConfigurationError, InvalidInput, InvalidType
from mfakit.factors._base import Factor, FactorSetup, check_prompt_options

if TYPE_CHECKING:
    from mfakit.hazmat.secretbox import Keyring

__all__ = ["RecoveryCodeBatch", "RecoveryCodes", "RecoveryCodesSetup"]

#: 24 base32 characters = 120 bits, above the 112 that allow a fast keyed hash.
CODE_CHARS: Final = 24
_ALPHABET: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
_PURPOSE: Final = b"mfakit/recovery-code/v1"
_MAX_INPUT: Final = 64


def normalize_recovery_code(raw: object) -> str:
    """Upper-case, without spaces and hyphens; exactly 24 base32 characters.

    Raises:
        InvalidType: Not a ``str``.
        InvalidInput: Anything else than a well-formed code.
    """
    if not isinstance(raw, str):
        raise InvalidType(f"a recovery code must be str, not {type(raw).__name__}")
    if len(raw) > _MAX_INPUT:
        raise InvalidInput("recovery code input is too long")
    code = raw.replace("-", "").replace(" ", "").strip().upper()
    if len(code) != CODE_CHARS or not _ALPHABET.issuperset(code):
        raise InvalidInput(f"a recovery code has {CODE_CHARS} letters and digits")
    return code


@dataclasses.dataclass(frozen=True, slots=True)
class RecoveryCodesSetup(FactorSetup):
    """A request for a new batch of recovery codes (the old batch stops working)."""

    factor: ClassVar[str] = "recovery_codes"


@dataclasses.dataclass(frozen=True, slots=True)
class RecoveryCodeBatch:
    """A new batch: show :attr:`codes` once; only their hashes are kept.

    Attributes:
        id: The credential id of the batch.
        credential: The stored batch (hashes only).
        codes: The codes, formatted ``ABCD-EFGH-...``. ``repr`` hides them.
    """

    id: str
    credential: Credential
    codes: tuple[str, ...] = dataclasses.field(repr=False)


class RecoveryCodes(Factor):
    """Single-use recovery codes.

    Args:
        count: Codes per batch (default 10).
        max_attempts: Attempts against one challenge; the subject lockout applies too.
        purpose: ``"recovery"`` (default) or ``"fallback"``.
        challenge_ttl: How long a prompt stays answerable.
    """

    name: ClassVar[str] = "recovery_codes"
    kind: ClassVar[FactorKind] = FactorKind.KNOWLEDGE

    def __init__(
        self,
        *,
        count: int = 10,
        max_attempts: int = 3,
        purpose: Literal["recovery", "fallback"] = "recovery",
        challenge_ttl: dt.timedelta = dt.timedelta(minutes=10),
    ) -> None:
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 50:
            raise ConfigurationError("RecoveryCodes count must be 1 to 50")
        check_prompt_options(
            "RecoveryCodes", max_attempts=max_attempts, purpose=purpose, challenge_ttl=challenge_ttl
        )
        self.count = count
        self.max_attempts = max_attempts
        self.purpose = purpose
        self.challenge_ttl = challenge_ttl

    def __repr__(self) -> str:
        return f"RecoveryCodes(count={self.count})"

    @staticmethod
    def setup() -> RecoveryCodesSetup:
        """Describe a new batch for :meth:`mfakit.MFA.enroll`."""
        return RecoveryCodesSetup()

    @staticmethod
    def _tag(keyring: Keyring, code: str) -> bytes:
        return keyring.mac(code.encode("ascii"), purpose=_PURPOSE)

    def begin(self, subject: Subject, *, now: dt.datetime, keyring: Keyring) -> RecoveryCodeBatch:
        """A fresh batch: the codes to show and the credential holding their hashes."""
        raw = [base64.b32encode(secrets.token_bytes(15)).decode("ascii") for _ in range(self.count)]
        tags = [self._tag(keyring, code) for code in raw]
        credential = Credential(
            id=new_id("cr"),
            subject_id=subject.id,
            tenant=subject.tenant,
            factor=self.name,
            label="Recovery codes",
            status=CredentialStatus.ACTIVE,
            created_at=now,
            confirmed_at=now,
            params={"count": len(tags), "used": []},
            # Keyed hashes, kept out of params so that no repr or listing shows them.
            secret=json.dumps([t.hex() for t in tags]).encode("ascii"),
        )
        shown = tuple("-".join(code[i : i + 4] for i in range(0, CODE_CHARS, 4)) for code in raw)
        return RecoveryCodeBatch(id=credential.id, credential=credential, codes=shown)

    @staticmethod
    def remaining(credential: Credential) -> int:
        """Codes of the batch not used yet."""
        return int(credential.params.get("count", 0)) - len(credential.params.get("used", []))

    def match(self, keyring: Keyring, credential: Credential | None, code: str) -> int | None:
        """Index of the unused code that matches, or ``None``. Compares every code.

        Every stored tag is compared in constant time, with no early exit, so time says
        nothing about which code matched or how many remain.
        """
        if credential is None:
            self._tag(keyring, code)  # the same work as for a subject with codes
            return None
        tags = [bytes.fromhex(t) for t in json.loads(credential.secret.decode("ascii"))]
        used = set(credential.params.get("used", []))
        found: int | None = None
        for index, tag in enumerate(tags):
            if keyring.verify_mac(tag, code.encode("ascii"), purpose=_PURPOSE) and found is None:
                found = index
        if found is None or found in used:
            return None
        return found

    @staticmethod
    def spend(credential: Credential, index: int, now: dt.datetime) -> Credential:
        """The batch with code ``index`` marked used (write it conditionally)."""
        used = sorted({*credential.params.get("used", []), index})
        return dataclasses.replace(
            credential,
            params={**credential.params, "used": used},
            last_used_at=now,
            version=credential.version + 1,
        )
