"""Recovery codes: format and strength, single use, regeneration, lockout, concurrency.

SECURITY.md 4, 14, 17, 20, 22, 36-38. A batch holds 10 codes of 24 base32 characters
(120 bits >= 112), stored only as keyed hashes (HMAC under the keyring), each usable once,
enforced by a conditional write so that concurrent uses of one code cannot both succeed.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Final

import pytest

from mfakit import (
    MFA,
    ChallengeNotFound,
    Credential,
    EventType,
    FactorKind,
    InvalidCode,
    InvalidInput,
    InvalidType,
    Keyring,
    LockedOut,
    Lockout,
    MalformedCode,
    NotEnrolled,
    Subject,
    Verification,
)
from mfakit.factors import TOTP, RecoveryCodeBatch, RecoveryCodes, RecoveryPIN
from mfakit.hazmat.hashing import SecretHasher
from mfakit.testing import FakeClock, ListSink, MemoryStore

if TYPE_CHECKING:
    from conftest import MakeMFA

NO_LOCK: Final = Lockout(max_failures=100, mode="suspend")
CODE_FORMAT: Final = re.compile(r"^[A-Z2-7]{4}(?:-[A-Z2-7]{4}){5}$")
BASE32: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
PIN: Final = "480213"
#: Well formed, but (with overwhelming probability) in no batch.
UNKNOWN_CODE: Final = "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF"


# ------------------------------------------------------------------------------------------
# helpers and fixtures
# ------------------------------------------------------------------------------------------
def build_mfa(make_mfa: MakeMFA, *, lockout: Lockout = NO_LOCK) -> MFA:
    return make_mfa(
        factors=[
            TOTP(issuer="ACME"),
            RecoveryPIN(hasher=SecretHasher.owasp_minimum()),
            RecoveryCodes(),
        ],
        lockout=lockout,
    )


@pytest.fixture
def mfa(make_mfa: MakeMFA) -> MFA:
    """TOTP, a recovery PIN and recovery codes over the conftest parts; no lockout."""
    return build_mfa(make_mfa)


@pytest.fixture
def batch(mfa: MFA, alice: Subject) -> RecoveryCodeBatch:
    return mfa.enroll(alice, RecoveryCodes.setup())


def use(mfa: MFA, subject: Subject, code: str) -> Verification:
    """Open a fresh recovery-code challenge and answer it."""
    challenge = mfa.challenge(subject, "recovery_codes")
    return mfa.verify(subject, challenge.id, code)


def code_credentials(mfa: MFA, subject: Subject) -> list[Credential]:
    return [c for c in mfa.credentials(subject) if c.factor == "recovery_codes"]


def at_rest_text(store: MemoryStore, events: ListSink) -> str:
    """Everything kept: records (repr), raw secrets and parameters, and the audit events."""
    dump = store.dump()
    parts = [repr(dump), repr(events.events)]
    for record in dump["credentials"]:
        assert isinstance(record, Credential)
        parts.append(record.secret.decode("latin-1"))
        parts.append(repr(dict(record.params)))
    return "\n".join(parts)


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Switch threads every 10 µs so that races actually interleave."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def run_at_once(jobs: list[Callable[[], Verification]]) -> list[Verification | BaseException]:
    """Run ``jobs`` in threads released together by a barrier; results in job order."""
    barrier = threading.Barrier(len(jobs))
    results: list[Verification | BaseException | None] = [None] * len(jobs)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = jobs[index]()
        except BaseException as exc:  # every outcome is inspected by the caller
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


# ------------------------------------------------------------------------------------------
# the batch
# ------------------------------------------------------------------------------------------
def test_a_batch_has_ten_distinct_120_bit_codes(mfa: MFA, alice: Subject, events: ListSink) -> None:
    batch = mfa.enroll(alice, RecoveryCodes.setup())
    assert len(batch.codes) == 10
    assert len(set(batch.codes)) == 10
    for code in batch.codes:
        assert CODE_FORMAT.fullmatch(code), code
        raw = code.replace("-", "")
        assert len(raw) == 24
        assert set(raw) <= BASE32
        assert len(raw) * 5 >= 112  # 120 bits of base32
    assert batch.id == batch.credential.id
    assert batch.credential.active
    assert code_credentials(mfa, alice) == [batch.credential]
    assert mfa.recovery_codes_remaining(alice) == 10
    (confirmed,) = events.of_type(EventType.ENROLLMENT_CONFIRMED)
    assert (confirmed.factor, confirmed.credential_id) == ("recovery_codes", batch.id)
    for code in batch.codes:
        assert code not in repr(batch)


def test_batches_differ(mfa: MFA, alice: Subject, bob: Subject) -> None:
    first = mfa.enroll(alice, RecoveryCodes.setup())
    second = mfa.enroll(bob, RecoveryCodes.setup())
    assert not set(first.codes) & set(second.codes)


def test_a_code_is_recovery_knowledge_evidence(
    mfa: MFA, alice: Subject, batch: RecoveryCodeBatch, clock: FakeClock, events: ListSink
) -> None:
    challenge = mfa.challenge(alice, "recovery_codes")
    verification = mfa.verify(alice, challenge.id, batch.codes[0])
    assert verification == Verification(
        subject_id=alice.id,
        tenant=alice.tenant,
        factor="recovery_codes",
        credential_id=batch.id,
        challenge_id=challenge.id,
        verified_at=clock.now(),
        kind=FactorKind.KNOWLEDGE,
        recovery=True,
    )
    (verified,) = events.of_type(EventType.VERIFIED)
    assert verified.detail == {"recovery": True}
    with pytest.raises(ChallengeNotFound):  # the challenge is single use too
        mfa.verify(alice, challenge.id, batch.codes[1])


def test_each_code_works_once(mfa: MFA, alice: Subject, batch: RecoveryCodeBatch) -> None:
    use(mfa, alice, batch.codes[0])
    assert mfa.recovery_codes_remaining(alice) == 9
    with pytest.raises(InvalidCode) as caught:
        use(mfa, alice, batch.codes[0])
    assert batch.codes[0] not in str(caught.value)
    assert mfa.recovery_codes_remaining(alice) == 9
    (credential,) = code_credentials(mfa, alice)
    assert list(credential.params["used"]) == [0]
    assert credential.last_used_at is not None


def test_every_code_once_then_none_left(mfa: MFA, alice: Subject, batch: RecoveryCodeBatch) -> None:
    for used, code in enumerate(batch.codes, start=1):
        use(mfa, alice, code)
        assert mfa.recovery_codes_remaining(alice) == 10 - used
    for code in batch.codes:
        with pytest.raises(InvalidCode):
            use(mfa, alice, code)
    assert mfa.recovery_codes_remaining(alice) == 0


@pytest.mark.parametrize(
    "form",
    [
        pytest.param(str.lower, id="lower-case"),
        pytest.param(lambda c: c.replace("-", ""), id="no-hyphens"),
        pytest.param(lambda c: c.replace("-", " "), id="spaces"),
        pytest.param(lambda c: f"  {c.lower().replace('-', '')}  ", id="padded-lower-plain"),
        pytest.param(lambda c: c[:7].lower() + c[7:].replace("-", " - "), id="mixed"),
    ],
)
def test_input_is_case_hyphen_and_space_insensitive(
    mfa: MFA, alice: Subject, batch: RecoveryCodeBatch, form: Callable[[str], str]
) -> None:
    typed = form(batch.codes[3])
    assert typed != batch.codes[3]
    assert use(mfa, alice, typed).credential_id == batch.id
    assert mfa.recovery_codes_remaining(alice) == 9
    with pytest.raises(InvalidCode):  # and the canonical form is now used up too
        use(mfa, alice, batch.codes[3])


def test_regeneration_invalidates_every_old_code(
    mfa: MFA, alice: Subject, batch: RecoveryCodeBatch, events: ListSink
) -> None:
    use(mfa, alice, batch.codes[0])
    assert mfa.recovery_codes_remaining(alice) == 9
    fresh = mfa.enroll(alice, RecoveryCodes.setup())
    assert fresh.id != batch.id
    assert not set(fresh.codes) & set(batch.codes)
    assert mfa.recovery_codes_remaining(alice) == 10
    assert code_credentials(mfa, alice) == [fresh.credential]
    removed = events.of_type(EventType.CREDENTIAL_REMOVED)
    assert [(e.credential_id, e.reason) for e in removed] == [(batch.id, "replaced")]
    for code in batch.codes:
        with pytest.raises(InvalidCode):
            use(mfa, alice, code)
    assert mfa.recovery_codes_remaining(alice) == 10
    assert use(mfa, alice, fresh.codes[0]).credential_id == fresh.id
    assert mfa.recovery_codes_remaining(alice) == 9


def test_a_subject_without_codes_is_not_enrolled(mfa: MFA, bob: Subject) -> None:
    assert mfa.recovery_codes_remaining(bob) == 0
    challenge = mfa.challenge(bob, "recovery_codes")  # opens anyway (SECURITY.md 36)
    with pytest.raises(NotEnrolled) as caught:
        mfa.verify(bob, challenge.id, UNKNOWN_CODE)
    assert caught.value.public_message == InvalidCode("x").public_message
    assert mfa.lock_state(bob).failures == 1


def test_codes_are_per_subject(
    mfa: MFA, alice: Subject, bob: Subject, batch: RecoveryCodeBatch
) -> None:
    mfa.enroll(bob, RecoveryCodes.setup())
    with pytest.raises(InvalidCode):
        use(mfa, bob, batch.codes[0])
    assert mfa.recovery_codes_remaining(alice) == 10


def test_codes_are_hashed_under_the_keyring(
    make_mfa: MakeMFA,
    mfa: MFA,
    alice: Subject,
    batch: RecoveryCodeBatch,
    store: MemoryStore,
    clock: FakeClock,
) -> None:
    """A keyed hash (SECURITY.md 20): with another key the stored tags match nothing."""
    (credential,) = code_credentials(mfa, alice)
    # The tags live in the repr-hidden secret field, not in params (which listings show).
    assert "tags" not in credential.params
    assert credential.params["count"] == 10
    tags = json.loads(credential.secret.decode("ascii"))
    assert len(tags) == 10
    assert not any(t in repr(credential) for t in tags)
    assert all(re.fullmatch(r"[0-9a-f]+", t) for t in tags)
    other_key = MFA(
        store=store,
        keyring=Keyring.ephemeral(),
        factors=[RecoveryCodes()],
        clock=clock,
        lockout=NO_LOCK,
    )
    with pytest.raises(InvalidCode):
        use(other_key, alice, batch.codes[0])
    assert mfa.recovery_codes_remaining(alice) == 10
    assert use(mfa, alice, batch.codes[0]).recovery


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        pytest.param("ABCD-EFGH-IJKL-MNOP-QRST-UVW", InvalidInput, id="23-chars"),
        pytest.param("ABCD-EFGH-IJKL-MNOP-QRST-UVWXY", InvalidInput, id="25-chars"),
        pytest.param("ABCD-EFGH-IJKL-MNOP-QRST-UVW0", InvalidInput, id="zero"),
        pytest.param("ABCD-EFGH-IJKL-MNOP-QRST-UVW1", InvalidInput, id="one"),
        pytest.param("ABCD-EFGH-IJKL-MNOP-QRST-UVW8", InvalidInput, id="eight"),
        pytest.param("ABCD-EFGH-IJKL-MNOP-QRST-UVW9", InvalidInput, id="nine"),
        pytest.param("ABCD_EFGH_IJKL_MNOP_QRST_UVWX", InvalidInput, id="underscores"),
        pytest.param("ABCD-EFGH-IJKL-MNOP-QRST-UVW\uff38", InvalidInput, id="full-width"),
        pytest.param("", InvalidInput, id="empty"),
        pytest.param("A" * 65, MalformedCode, id="65-chars"),
        pytest.param(None, InvalidType, id="none"),
        pytest.param(12345678, InvalidType, id="int"),
        pytest.param(b"ABCDEFGHIJKLMNOPQRSTUVWX", InvalidType, id="bytes"),
    ],
)
def test_malformed_codes_charge_nothing(
    mfa: MFA,
    alice: Subject,
    batch: RecoveryCodeBatch,
    store: MemoryStore,
    events: ListSink,
    raw: object,
    error: type[InvalidInput],
) -> None:
    challenge = mfa.challenge(alice, "recovery_codes")
    lock = mfa.lock_state(alice)
    with pytest.raises(error) as caught:
        mfa.verify(alice, challenge.id, raw)  # type: ignore[arg-type]
    assert type(caught.value) is error
    assert mfa.lock_state(alice) == lock
    assert store.get_challenge(challenge.id) == challenge
    assert events.of_type(EventType.FAILED) == []
    assert mfa.recovery_codes_remaining(alice) == 10
    assert mfa.verify(alice, challenge.id, batch.codes[0]).challenge_id == challenge.id


# ------------------------------------------------------------------------------------------
# the shared lockout (SECURITY.md 16, 17)
# ------------------------------------------------------------------------------------------
def test_code_failures_share_the_lockout_with_the_pin(make_mfa: MakeMFA, alice: Subject) -> None:
    mfa = build_mfa(make_mfa, lockout=Lockout(max_failures=5, mode="suspend"))
    batch = mfa.enroll(alice, RecoveryCodes.setup())
    mfa.enroll(alice, RecoveryPIN.setup(PIN))
    for _ in range(2):
        with pytest.raises(InvalidCode):
            use(mfa, alice, UNKNOWN_CODE)
    pin_challenge = mfa.challenge(alice, "recovery_pin")
    for _ in range(3):
        with pytest.raises(InvalidCode):
            mfa.verify(alice, pin_challenge.id, "902461")
    state = mfa.lock_state(alice)
    assert (state.failures, state.suspended) == (5, True)
    # Locked: a right code is refused exactly like a wrong one, and is not spent.
    answers: list[tuple[str, str]] = []
    for code in (batch.codes[0], UNKNOWN_CODE):
        with pytest.raises(LockedOut) as caught:
            use(mfa, alice, code)
        answers.append((str(caught.value), caught.value.public_message))
    assert answers[0] == answers[1]
    assert mfa.recovery_codes_remaining(alice) == 10
    assert mfa.lock_state(alice) == state
    mfa.unlock(alice, actor="admin1")
    assert use(mfa, alice, batch.codes[0]).recovery
    assert mfa.recovery_codes_remaining(alice) == 9


def test_a_used_code_counts_as_a_failure_and_success_resets(
    mfa: MFA, alice: Subject, batch: RecoveryCodeBatch
) -> None:
    use(mfa, alice, batch.codes[0])
    for _ in range(2):
        with pytest.raises(InvalidCode):
            use(mfa, alice, batch.codes[0])
    assert mfa.lock_state(alice).failures == 2
    use(mfa, alice, batch.codes[1])
    assert mfa.lock_state(alice).failures == 0


def test_max_attempts_per_challenge(mfa: MFA, alice: Subject, batch: RecoveryCodeBatch) -> None:
    challenge = mfa.challenge(alice, "recovery_codes")
    assert challenge.max_attempts == 3
    for _ in range(3):
        with pytest.raises(InvalidCode):
            mfa.verify(alice, challenge.id, UNKNOWN_CODE)
    with pytest.raises(ChallengeNotFound):
        mfa.verify(alice, challenge.id, batch.codes[0])
    assert mfa.recovery_codes_remaining(alice) == 10  # the right code was not spent


# ------------------------------------------------------------------------------------------
# concurrency (SECURITY.md 4)
# ------------------------------------------------------------------------------------------
@pytest.mark.usefixtures("fast_switching")
def test_one_code_used_by_32_threads_at_once_succeeds_once(
    mfa: MFA, alice: Subject, batch: RecoveryCodeBatch, events: ListSink
) -> None:
    code = batch.codes[5]
    challenges = [mfa.challenge(alice, "recovery_codes") for _ in range(32)]

    def job(challenge_id: str) -> Callable[[], Verification]:
        return lambda: mfa.verify(alice, challenge_id, code)

    results = run_at_once([job(c.id) for c in challenges])
    wins = [r for r in results if isinstance(r, Verification)]
    losses = [r for r in results if not isinstance(r, Verification)]
    assert len(wins) == 1
    assert len(losses) == 31
    assert all(type(r) is InvalidCode for r in losses), {type(r).__name__ for r in losses}
    assert mfa.recovery_codes_remaining(alice) == 9
    (credential,) = code_credentials(mfa, alice)
    assert list(credential.params["used"]) == [5]
    assert len(events.of_type(EventType.VERIFIED)) == 1
    assert len(events.of_type(EventType.FAILED)) == 31


@pytest.mark.usefixtures("fast_switching")
def test_ten_codes_used_at_once_all_succeed(
    mfa: MFA, alice: Subject, batch: RecoveryCodeBatch
) -> None:
    challenges = [mfa.challenge(alice, "recovery_codes") for _ in batch.codes]

    def job(challenge_id: str, code: str) -> Callable[[], Verification]:
        return lambda: mfa.verify(alice, challenge_id, code)

    results = run_at_once(
        [job(c.id, code) for c, code in zip(challenges, batch.codes, strict=True)]
    )
    assert all(isinstance(r, Verification) for r in results), results
    assert mfa.recovery_codes_remaining(alice) == 0  # no lost update
    (credential,) = code_credentials(mfa, alice)
    assert list(credential.params["used"]) == list(range(10))
    assert mfa.lock_state(alice).failures == 0


# ------------------------------------------------------------------------------------------
# hashes only at rest (SECURITY.md 20, 22)
# ------------------------------------------------------------------------------------------
def test_no_code_is_stored_or_logged(
    mfa: MFA,
    alice: Subject,
    bob: Subject,
    batch: RecoveryCodeBatch,
    store: MemoryStore,
    events: ListSink,
) -> None:
    other = mfa.enroll(bob, RecoveryCodes.setup())
    use(mfa, alice, batch.codes[0].lower())
    with pytest.raises(InvalidCode):
        use(mfa, alice, batch.codes[0])
    with pytest.raises(InvalidCode):
        use(mfa, bob, batch.codes[1])
    text = at_rest_text(store, events)
    for code in (*batch.codes, *other.codes):
        plain = code.replace("-", "")
        for form in (code, plain, code.lower(), plain.lower()):
            assert form not in text


def test_a_recovery_success_emits_recovery_used(
    mfa: MFA, alice: Subject, batch: RecoveryCodeBatch, events: ListSink
) -> None:
    """The host learns from the audit trail too that the subject got in without a device."""
    challenge = mfa.challenge(alice, "recovery_codes")
    proof = mfa.verify(alice, challenge.id, batch.codes[0])
    (used,) = events.of_type(EventType.RECOVERY_USED)
    assert (used.subject_id, used.factor, used.challenge_id) == (
        alice.id,
        "recovery_codes",
        proof.challenge_id,
    )
    assert all(code.replace("-", "") not in repr(used) for code in batch.codes)
