"""Secret questions: the set rules, normalisation, binding, must-update and timing.

SECURITY.md 17, 21, 22, 24-26, 36-38 and the register's rules (shared/reference/ppsr-mfa.txt):
3 unique questions, 3 unique answers, at least 4 characters per answer, answers not case
sensitive. Hashing uses ``SecretHasher.owasp_minimum()`` (the OWASP floor, ~30 ms per
argon2 computation); timing is shown by counting ``SecretHasher.calls``, never wall time.

Known, deliberate limit of SECURITY.md 36: unlike the PIN and recovery codes, a
secret-questions challenge cannot be opened for a subject without a set. The challenge has
to show the subject's own questions, so ``mfa.challenge(subject, "secret_questions")``
raises :class:`NotEnrolled` up front (no argon2 work). Hosts should offer the questions
step only where the register does (after the password, to subjects known to have a set).
Once a challenge is open, right answers, wrong answers and a set removed meanwhile all cost
exactly one argon2 verification per asked question.
"""

from __future__ import annotations

import dataclasses
import json
import string
import unicodedata
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

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
    NotEnrolled,
    Subject,
    Verification,
    WeakSecret,
)
from mfakit.factors import TOTP, AnswerRules, SecretQuestions
from mfakit.factors.secret_questions import normalize_answer
from mfakit.hazmat.hashing import SecretHasher
from mfakit.testing import FakeClock, ListSink, MemoryStore

if TYPE_CHECKING:
    from conftest import MakeMFA

CATALOGUE: Final = {
    "pet": "What was the name of your first pet?",
    "city": "In which city were you born?",
    "school": "What was the name of your primary school?",
    "street": "What street did you grow up on?",
    "food": "Favourite food",
}
GOOD: Final = {"pet": "Rexy", "city": "Paris", "school": "St Mary's"}
NO_LOCK: Final = Lockout(max_failures=100, mode="suspend")
#: Shared by the property tests (thread-safe; fixtures do not mix with @given).
PROPERTY_HASHER: Final = SecretHasher.owasp_minimum()
ALICE: Final = Subject(
    id="u-alice", tenant="t1", username="alice", email="alice@example.com", display_name="Alice"
)


# ------------------------------------------------------------------------------------------
# helpers and fixtures
# ------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Kit:
    mfa: MFA
    hasher: SecretHasher
    questions: SecretQuestions
    store: MemoryStore
    events: ListSink


def build_kit(
    make_mfa: MakeMFA,
    store: MemoryStore,
    events: ListSink,
    *,
    allow_free_text: bool = False,
    rules: AnswerRules | None = None,
    ask: int | None = None,
    hasher: SecretHasher | None = None,
    lockout: Lockout = NO_LOCK,
) -> Kit:
    hasher = hasher if hasher is not None else SecretHasher.owasp_minimum()
    questions = SecretQuestions(
        CATALOGUE, allow_free_text=allow_free_text, rules=rules, ask=ask, hasher=hasher
    )
    mfa = make_mfa(factors=[TOTP(issuer="ACME"), questions], lockout=lockout)
    return Kit(mfa, hasher, questions, store, events)


@pytest.fixture
def kit(make_mfa: MakeMFA, store: MemoryStore, events: ListSink) -> Kit:
    """The catalogue, default rules (the register's), every question asked, no lockout."""
    return build_kit(make_mfa, store, events)


@pytest.fixture
def enrolled(kit: Kit, alice: Subject) -> Credential:
    """Alice's set: GOOD."""
    return kit.mfa.enroll(alice, SecretQuestions.setup(GOOD))


def question_credentials(mfa: MFA, subject: Subject) -> list[Credential]:
    return [c for c in mfa.credentials(subject) if c.factor == "secret_questions"]


def answer_now(mfa: MFA, subject: Subject, answers: Mapping[str, str]) -> Verification:
    """Open a fresh challenge and answer it."""
    challenge = mfa.challenge(subject, "secret_questions")
    return mfa.answer(subject, challenge.id, answers)


def stored_hashes(credential: Credential) -> list[str]:
    hashes = json.loads(credential.secret.decode("ascii"))
    assert isinstance(hashes, list)
    assert all(isinstance(h, str) for h in hashes)
    return hashes


def at_rest_text(store: MemoryStore, events: ListSink) -> str:
    """Everything kept: records (repr), raw secrets and parameters, and the audit events."""
    dump = store.dump()
    parts = [repr(dump), repr(events.events)]
    for record in dump["credentials"]:
        assert isinstance(record, Credential)
        parts.append(record.secret.decode("latin-1"))
        parts.append(repr(dict(record.params)))
    return "\n".join(parts)


def full_width(text: str) -> str:
    """Printable ASCII mapped to the full-width forms (U+FF01..U+FF5E), spaces kept."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


# ------------------------------------------------------------------------------------------
# the set rules table (the register's rules, SECURITY.md 25)
# ------------------------------------------------------------------------------------------
# (answers, allow_free_text, expected: None = accepted, or the error class, message fragment)
SET_RULES: Final = [
    pytest.param(GOOD, False, None, "", id="three-distinct"),
    pytest.param(
        {"street": "Rexy Lane", "food": "Lasagne", "pet": "Rexy"}, False, None, "", id="any-three"
    ),
    pytest.param(
        {"free:Name of my first teacher?": "Mrs  Smith", "pet": "Rexy", "city": "Paris"},
        True,
        None,
        "",
        id="free-text-allowed",
    ),
    pytest.param({"pet": "Rexy", "city": "Paris"}, False, InvalidInput, "exactly 3", id="two"),
    pytest.param(
        {**GOOD, "street": "Main Road"}, False, InvalidInput, "exactly 3", id="four-questions"
    ),
    pytest.param({}, False, InvalidInput, "exactly 3", id="none"),
    pytest.param(
        {"free:Pet?": "Rexy", "free:PET?": "Paris", "city": "Sydney"},
        True,
        InvalidInput,
        "different questions",
        id="free-dup-case",
    ),
    pytest.param(
        {"free:My  first pet?": "Rexy", "free:My first pet?": "Paris", "city": "Sydney"},
        True,
        InvalidInput,
        "different questions",
        id="free-dup-inner-spaces",
    ),
    pytest.param(
        {"free: My pet? ": "Rexy", "free:My pet?": "Paris", "city": "Sydney"},
        True,
        InvalidInput,
        "different questions",
        id="free-dup-outer-spaces",
    ),
    pytest.param(
        {"free:" + full_width("My pet?"): "Rexy", "free:my pet?": "Paris", "city": "Sydney"},
        True,
        InvalidInput,
        "different questions",
        id="free-dup-width",
    ),
    pytest.param(
        {"free:in which CITY were you born?": "Rexy", "city": "Paris", "pet": "Lassie"},
        True,
        InvalidInput,
        "different questions",
        id="free-dup-of-catalogue",
    ),
    pytest.param(
        {"pet": "Rexy", "city": "REXY", "school": "St Mary's"},
        False,
        WeakSecret,
        "different answer",
        id="answers-dup-case",
    ),
    pytest.param(
        {"pet": "Rexy", "city": "New  York", "school": " new york "},
        False,
        WeakSecret,
        "different answer",
        id="answers-dup-spaces",
    ),
    pytest.param(
        {"pet": full_width("REXY"), "city": "Paris", "school": "rexy"},
        False,
        WeakSecret,
        "different answer",
        id="answers-dup-width",
    ),
    pytest.param(
        {"pet": "Rex", "city": "Paris", "school": "St Mary's"},
        False,
        WeakSecret,
        "at least 4",
        id="three-characters",
    ),
    pytest.param(
        {"pet": "  Rex  ", "city": "Paris", "school": "St Mary's"},
        False,
        WeakSecret,
        "at least 4",
        id="three-characters-padded",
    ),
    pytest.param(
        {"pet": full_width("Rex"), "city": "Paris", "school": "St Mary's"},
        False,
        WeakSecret,
        "at least 4",
        id="three-characters-full-width",
    ),
    pytest.param(
        {"pet": "", "city": "Paris", "school": "St Mary's"},
        False,
        WeakSecret,
        "at least 4",
        id="empty-answer",
    ),
    pytest.param(
        {"pet": "ALICE", "city": "Paris", "school": "St Mary's"},
        False,
        WeakSecret,
        "username",
        id="username",
    ),
    pytest.param(
        {"pet": "Rexy", "city": "Alice@Example.COM", "school": "St Mary's"},
        False,
        WeakSecret,
        "e-mail",
        id="email",
    ),
    pytest.param(
        {"food": "favourite  FOOD", "city": "Paris", "school": "St Mary's"},
        False,
        WeakSecret,
        "its question",
        id="own-question",
    ),
    pytest.param(
        {"free:Best friend": "best friend", "city": "Paris", "pet": "Rexy"},
        True,
        WeakSecret,
        "its question",
        id="own-free-question",
    ),
    pytest.param(
        {"colour": "Green", "city": "Paris", "pet": "Rexy"},
        False,
        InvalidInput,
        "unknown question",
        id="unknown-id",
    ),
    pytest.param(
        {"free:Best friend?": "Johnny", "city": "Paris", "pet": "Rexy"},
        False,
        InvalidInput,
        "not allowed",
        id="free-text-not-allowed",
    ),
    pytest.param(
        {"free:   ": "Johnny", "city": "Paris", "pet": "Rexy"},
        True,
        InvalidInput,
        "printable",
        id="free-text-blank",
    ),
    pytest.param(
        {"free:Best\nfriend?": "Johnny", "city": "Paris", "pet": "Rexy"},
        True,
        InvalidInput,
        "printable",
        id="free-text-control-char",
    ),
    pytest.param(
        {"free:" + "q" * 201: "Johnny", "city": "Paris", "pet": "Rexy"},
        True,
        InvalidInput,
        "printable",
        id="free-text-too-long",
    ),
    pytest.param(
        {"pet": 1234, "city": "Paris", "school": "St Mary's"},
        False,
        InvalidType,
        "str",
        id="answer-int",
    ),
    pytest.param(
        {"pet": None, "city": "Paris", "school": "St Mary's"},
        False,
        InvalidType,
        "str",
        id="answer-none",
    ),
    pytest.param(
        {"pet": b"Rexy", "city": "Paris", "school": "St Mary's"},
        False,
        InvalidType,
        "str",
        id="answer-bytes",
    ),
    pytest.param(
        {7: "Rexy", "city": "Paris", "school": "St Mary's"},
        False,
        InvalidType,
        "str",
        id="question-id-int",
    ),
    pytest.param(
        {"pet": "r" * 257, "city": "Paris", "school": "St Mary's"},
        False,
        InvalidInput,
        "256",
        id="answer-257-chars",
    ),
]


@pytest.mark.parametrize(("answers", "free_text", "expected", "fragment"), SET_RULES)
def test_question_set_rules_table(
    make_mfa: MakeMFA,
    store: MemoryStore,
    events: ListSink,
    alice: Subject,
    answers: dict[object, object],
    free_text: bool,
    expected: type[InvalidInput] | None,
    fragment: str,
) -> None:
    kit = build_kit(make_mfa, store, events, allow_free_text=free_text)
    setup = SecretQuestions.setup(answers)  # type: ignore[arg-type]
    if expected is None:
        credential = kit.mfa.enroll(alice, setup)
        assert credential.active
        questions = credential.params["questions"]
        assert len(questions) == 3
        assert credential.params["rules"] == {"count": 3, "min_length": 4, "unique_answers": True}
        assert set(credential.params) == {"questions", "rules"}  # no hints (ISM-1980)
        hashes = stored_hashes(credential)
        assert len(hashes) == 3
        assert all(h.startswith("$argon2id$") for h in hashes)
        assert len(set(hashes)) == 3
        # Each hash is of "<question id>\x1f<normalised answer>", in the chosen order.
        for qid, answer, encoded in zip(questions, answers.values(), hashes, strict=True):
            assert isinstance(answer, str)
            assert kit.hasher.verify(encoded, f"{qid}\x1f{normalize_answer(answer)}")
        assert question_credentials(kit.mfa, alice) == [credential]
        return
    with pytest.raises(expected) as caught:
        kit.mfa.enroll(alice, setup)
    assert type(caught.value) is expected
    message = str(caught.value)
    assert fragment in message
    for answer in answers.values():
        if isinstance(answer, str) and len(normalize_answer(answer[:256])) >= 4:
            assert normalize_answer(answer[:256]) not in message.casefold()
    assert question_credentials(kit.mfa, alice) == []
    assert events.events == []
    assert kit.hasher.calls == 0


def test_the_rules_table_is_large_enough() -> None:
    outcomes = [p.values[2] for p in SET_RULES]
    assert len(SET_RULES) >= 20
    assert outcomes.count(WeakSecret) >= 8
    assert outcomes.count(InvalidInput) >= 8


def test_setup_needs_a_mapping() -> None:
    with pytest.raises(InvalidType):
        SecretQuestions.setup([("pet", "Rexy")])  # type: ignore[arg-type]


def test_setup_repr_hides_the_answers() -> None:
    setup = SecretQuestions.setup(GOOD)
    for answer in GOOD.values():
        assert answer not in repr(setup)


def test_looser_rules_allow_what_the_register_refuses(
    make_mfa: MakeMFA, store: MemoryStore, events: ListSink, alice: Subject
) -> None:
    kit = build_kit(
        make_mfa, store, events, rules=AnswerRules(count=2, min_length=3, unique_answers=False)
    )
    credential = kit.mfa.enroll(alice, SecretQuestions.setup({"pet": "Rex", "city": "rex"}))
    assert credential.params["rules"] == {"count": 2, "min_length": 3, "unique_answers": False}
    assert answer_now(kit.mfa, alice, {"pet": "REX", "city": "Rex"}).factor == "secret_questions"


def test_a_new_set_replaces_the_old_one(kit: Kit, enrolled: Credential, alice: Subject) -> None:
    new = kit.mfa.enroll(
        alice, SecretQuestions.setup({"street": "Main Road", "food": "Lasagne", "pet": "Fido"})
    )
    assert question_credentials(kit.mfa, alice) == [new]
    removed = kit.events.of_type(EventType.CREDENTIAL_REMOVED)
    assert [(e.credential_id, e.reason) for e in removed] == [(enrolled.id, "replaced")]
    with pytest.raises(InvalidCode):
        answer_now(kit.mfa, alice, {"street": "Main Road", "food": "Lasagne", "pet": "Rexy"})
    answer_now(kit.mfa, alice, {"street": "main road", "food": "LASAGNE", "pet": "fido"})


# ------------------------------------------------------------------------------------------
# answering
# ------------------------------------------------------------------------------------------
def test_answers_are_case_width_and_space_insensitive(
    kit: Kit, enrolled: Credential, alice: Subject
) -> None:
    challenge = kit.mfa.challenge(alice, "secret_questions")
    assert challenge.prompts == ("pet", "city", "school")
    assert [kit.mfa.question_text(q) for q in challenge.prompts] == [
        CATALOGUE["pet"],
        CATALOGUE["city"],
        CATALOGUE["school"],
    ]
    verification = kit.mfa.answer(
        alice,
        challenge.id,
        {"pet": "  rEXY\t", "city": full_width("PARIS"), "school": "st\u3000 \u00a0MARY'S"},
    )
    assert verification.kind is FactorKind.KNOWLEDGE
    assert verification.recovery is False  # purpose "fallback" by default
    assert verification.factor == "secret_questions"
    assert verification.credential_id == enrolled.id
    assert verification.challenge_id == challenge.id
    with pytest.raises(ChallengeNotFound):  # single use
        kit.mfa.answer(alice, challenge.id, GOOD)


def test_a_recovery_purpose_marks_the_verification(make_mfa: MakeMFA, alice: Subject) -> None:
    factor = SecretQuestions(CATALOGUE, hasher=SecretHasher.owasp_minimum(), purpose="recovery")
    mfa = make_mfa(factors=[factor])
    mfa.enroll(alice, SecretQuestions.setup(GOOD))
    assert answer_now(mfa, alice, GOOD).recovery is True


def test_which_answer_was_wrong_is_never_revealed(
    kit: Kit, enrolled: Credential, alice: Subject
) -> None:
    seen: list[tuple[str, str, str]] = []
    failed_events: list[str] = []
    wrong_sets = [{**GOOD, qid: "Wrong answer"} for qid in GOOD] + [
        dict.fromkeys(GOOD, "Wrong answer")
    ]
    for answers in wrong_sets:
        challenge = kit.mfa.challenge(alice, "secret_questions")
        with pytest.raises(InvalidCode) as caught:
            kit.mfa.answer(alice, challenge.id, answers)
        seen.append((str(caught.value), caught.value.public_message, repr(caught.value)))
        event = kit.events.of_type(EventType.FAILED)[-1]
        assert event.challenge_id == challenge.id
        failed_events.append(repr(dataclasses.replace(event, challenge_id=None)))
    assert len(set(seen)) == 1
    assert len(set(failed_events)) == 1
    for text in seen[0]:
        for qid in GOOD:
            assert qid not in text
            assert CATALOGUE[qid] not in text


@pytest.mark.parametrize(
    "answers",
    [
        pytest.param({}, id="none"),
        pytest.param({"pet": "Rexy", "city": "Paris"}, id="one-missing"),
        pytest.param({"pet": "Rexy", "city": "Paris", "school": ""}, id="one-empty"),
        pytest.param({"pet": "Rexy", "city": "Paris", "school": "   "}, id="one-blank"),
        pytest.param({"pet": "Rexy", "city": "Paris", "street": "St Mary's"}, id="wrong-question"),
    ],
)
def test_every_asked_question_must_be_answered(
    kit: Kit, enrolled: Credential, alice: Subject, answers: dict[str, str]
) -> None:
    with pytest.raises(InvalidCode):
        answer_now(kit.mfa, alice, answers)
    assert kit.mfa.lock_state(alice).failures == 1


@pytest.mark.parametrize(
    ("answers", "error"),
    [
        ({"pet": 1234}, InvalidType),
        ({1: "Rexy"}, InvalidType),
        ([("pet", "Rexy")], InvalidType),
        ({"pet": "r" * 257}, InvalidInput),
        ({f"q{i}": "Rexy" for i in range(21)}, InvalidInput),
    ],
)
def test_malformed_answers_charge_nothing(
    kit: Kit, enrolled: Credential, alice: Subject, answers: object, error: type[InvalidInput]
) -> None:
    challenge = kit.mfa.challenge(alice, "secret_questions")
    calls = kit.hasher.calls
    with pytest.raises(error):
        kit.mfa.answer(alice, challenge.id, answers)  # type: ignore[arg-type]
    assert kit.hasher.calls == calls
    assert kit.mfa.lock_state(alice).failures == 0
    assert kit.store.get_challenge(challenge.id) == challenge
    assert kit.events.of_type(EventType.FAILED) == []
    kit.mfa.answer(alice, challenge.id, GOOD)


def test_an_answer_that_expands_under_nfkc_charges_nothing(
    kit: Kit, enrolled: Credential, alice: Subject
) -> None:
    challenge = kit.mfa.challenge(alice, "secret_questions")
    expanding = "\ufdfa" * 60  # 60 characters; NFKC makes each one 18
    assert len(expanding) <= 256
    with pytest.raises(InvalidInput):
        kit.mfa.answer(alice, challenge.id, {**GOOD, "pet": expanding})
    assert kit.mfa.lock_state(alice).failures == 0
    assert kit.store.get_challenge(challenge.id) == challenge


def test_a_question_challenge_is_a_knowledge_challenge_only(
    kit: Kit, enrolled: Credential, alice: Subject
) -> None:
    challenge = kit.mfa.challenge(alice, "secret_questions")
    with pytest.raises(InvalidInput):
        kit.mfa.verify(alice, challenge.id, "Rexy")
    with pytest.raises(InvalidInput):
        kit.mfa.question_text("colour")
    with pytest.raises(InvalidType):
        kit.mfa.question_text(7)  # type: ignore[arg-type]


def test_max_attempts_and_the_shared_lockout(
    make_mfa: MakeMFA, store: MemoryStore, events: ListSink, alice: Subject
) -> None:
    kit = build_kit(make_mfa, store, events, lockout=Lockout(max_failures=5, mode="suspend"))
    kit.mfa.enroll(alice, SecretQuestions.setup(GOOD))
    wrong = {**GOOD, "city": "Lyon"}
    challenge = kit.mfa.challenge(alice, "secret_questions")
    for _ in range(3):
        with pytest.raises(InvalidCode):
            kit.mfa.answer(alice, challenge.id, wrong)
    with pytest.raises(ChallengeNotFound):  # the challenge's own limit (3) ...
        kit.mfa.answer(alice, challenge.id, GOOD)
    # ... and that attempt was charged too, like any attempt (charge before comparison).
    assert kit.mfa.lock_state(alice).failures == 4
    # A failure with another factor is the 5th of the subject and suspends it (SECURITY.md 17) ...
    totp_challenge = kit.mfa.challenge(alice, "totp")
    with pytest.raises(NotEnrolled):
        kit.mfa.verify(alice, totp_challenge.id, "123456")
    assert kit.mfa.lock_state(alice).suspended
    # ... after which right answers are refused like wrong ones.
    answers: list[tuple[str, str]] = []
    for attempt in (GOOD, wrong):
        with pytest.raises(LockedOut) as caught:
            answer_now(kit.mfa, alice, attempt)
        answers.append((str(caught.value), caught.value.public_message))
    assert answers[0] == answers[1]


def test_the_same_questions_are_asked_again(
    make_mfa: MakeMFA, store: MemoryStore, events: ListSink, alice: Subject
) -> None:
    """ask=2 of 3: a fixed subset, the same after failures and across MFA instances."""
    kit = build_kit(make_mfa, store, events, ask=2)
    credential = kit.mfa.enroll(alice, SecretQuestions.setup(GOOD))
    prompts: list[tuple[str, ...]] = []
    for _ in range(5):
        challenge = kit.mfa.challenge(alice, "secret_questions")
        prompts.append(challenge.prompts)
        with pytest.raises(InvalidCode):
            kit.mfa.answer(alice, challenge.id, dict.fromkeys(challenge.prompts, "Wrong answer"))
    assert len(set(prompts)) == 1
    asked = prompts[0]
    assert len(asked) == 2
    assert set(asked) < set(GOOD)
    assert list(asked) == [q for q in GOOD if q in asked]  # in the subject's order
    other = build_kit(make_mfa, store, events, ask=2)
    assert other.questions.select(credential) == list(asked)
    assert other.mfa.challenge(alice, "secret_questions").prompts == asked
    # Answering only the asked ones is enough.
    assert answer_now(kit.mfa, alice, {q: GOOD[q] for q in asked}).factor == "secret_questions"


# ------------------------------------------------------------------------------------------
# binding of each answer to its question
# ------------------------------------------------------------------------------------------
def test_swapped_hashes_do_not_verify(kit: Kit, enrolled: Credential, alice: Subject) -> None:
    hashes = stored_hashes(enrolled)
    swapped = [hashes[1], hashes[0], hashes[2]]
    tampered = dataclasses.replace(
        enrolled, secret=json.dumps(swapped).encode("ascii"), version=enrolled.version + 1
    )
    assert kit.store.put_credential(tampered)
    # The original answers fail ...
    with pytest.raises(InvalidCode):
        answer_now(kit.mfa, alice, GOOD)
    # ... and so do the answers moved along with their hashes.
    with pytest.raises(InvalidCode):
        answer_now(kit.mfa, alice, {"pet": "Paris", "city": "Rexy", "school": "St Mary's"})
    # Each hash still verifies only for its own question.
    assert not kit.questions.matches(tampered, ["pet"], {"pet": "Paris"})
    assert not kit.questions.matches(tampered, ["pet"], {"pet": "Rexy"})
    assert kit.questions.matches(tampered, ["school"], {"school": "st mary's"})


def test_an_answer_typed_for_another_question_fails(
    kit: Kit, enrolled: Credential, alice: Subject
) -> None:
    with pytest.raises(InvalidCode):
        answer_now(kit.mfa, alice, {"pet": "Paris", "city": "Rexy", "school": "St Mary's"})
    for asked, answer in GOOD.items():
        for other in GOOD:
            expected = other == asked
            assert kit.questions.matches(enrolled, [other], {other: answer}) is expected


# ------------------------------------------------------------------------------------------
# must-update (the register's "prompted to change")
# ------------------------------------------------------------------------------------------
def test_no_set_needs_an_update(kit: Kit, bob: Subject) -> None:
    assert kit.mfa.questions_need_update(bob) is True
    assert kit.mfa.secret_questions(bob) == []


def test_tightened_rules_flag_the_set(
    make_mfa: MakeMFA, store: MemoryStore, events: ListSink, alice: Subject
) -> None:
    loose = build_kit(make_mfa, store, events, rules=AnswerRules(min_length=4))
    loose.mfa.enroll(alice, SecretQuestions.setup(GOOD))
    assert loose.mfa.questions_need_update(alice) is False
    same = build_kit(make_mfa, store, events, rules=AnswerRules(min_length=4))
    assert same.mfa.questions_need_update(alice) is False
    looser = build_kit(make_mfa, store, events, rules=AnswerRules(min_length=3))
    assert looser.mfa.questions_need_update(alice) is False
    tight = build_kit(make_mfa, store, events, rules=AnswerRules(min_length=6))
    assert tight.mfa.questions_need_update(alice) is True
    more = build_kit(make_mfa, store, events, rules=AnswerRules(count=4))
    assert more.mfa.questions_need_update(alice) is True
    # A flagged set still answers: the host prompts for an update, it does not lock out.
    assert answer_now(tight.mfa, alice, GOOD).factor == "secret_questions"


def test_requiring_unique_answers_flags_a_set_without(
    make_mfa: MakeMFA, store: MemoryStore, events: ListSink, alice: Subject
) -> None:
    loose = build_kit(make_mfa, store, events, rules=AnswerRules(unique_answers=False))
    loose.mfa.enroll(
        alice, SecretQuestions.setup({"pet": "Rexy", "city": "rexy", "school": "x1y2"})
    )
    assert loose.mfa.questions_need_update(alice) is False
    strict = build_kit(make_mfa, store, events)
    assert strict.mfa.questions_need_update(alice) is True


def imported_hashes(hasher: SecretHasher, answers: Mapping[str, str]) -> dict[str, str]:
    return {qid: hasher.hash(f"{qid}\x1f{normalize_answer(a)}") for qid, a in answers.items()}


def test_imported_hashes_verify_and_weak_rules_need_an_update(kit: Kit, alice: Subject) -> None:
    short = {"pet": "Al", "city": "Oz", "school": "Bo"}
    setup = SecretQuestions.import_hashes(
        imported_hashes(kit.hasher, short), rules=AnswerRules(count=3, min_length=2)
    )
    for value in setup.hashes.values():
        assert value not in repr(setup)
    credential = kit.mfa.enroll(alice, setup)
    assert credential.params["rules"] == {"count": 3, "min_length": 2, "unique_answers": True}
    assert kit.mfa.questions_need_update(alice) is True
    assert answer_now(kit.mfa, alice, {"pet": "AL", "city": " oz ", "school": "bo"}).factor == (
        "secret_questions"
    )
    with pytest.raises(InvalidCode):
        answer_now(kit.mfa, alice, {"pet": "Oz", "city": "Al", "school": "Bo"})


def test_an_import_under_the_current_rules_needs_no_update(kit: Kit, alice: Subject) -> None:
    setup = SecretQuestions.import_hashes(imported_hashes(kit.hasher, GOOD), rules=AnswerRules())
    kit.mfa.enroll(alice, setup)
    assert kit.mfa.questions_need_update(alice) is False
    assert answer_now(kit.mfa, alice, GOOD).factor == "secret_questions"


def test_an_import_with_fewer_questions_than_its_rules_is_not_a_valid_set(
    kit: Kit, alice: Subject
) -> None:
    two = imported_hashes(kit.hasher, {"pet": "Rexy", "city": "Paris"})
    setup = SecretQuestions.import_hashes(two, rules=AnswerRules())
    try:
        kit.mfa.enroll(alice, setup)
    except InvalidInput:
        return  # refused at import: fine
    assert kit.mfa.questions_need_update(alice) is True


@pytest.mark.parametrize(
    ("hashes", "error"),
    [
        ({"pet": "$2b$12$abcdefghijklmnopqrstuv"}, InvalidInput),
        ({"pet": 7}, InvalidInput),
        ([("pet", "$argon2id$")], InvalidType),
    ],
)
def test_import_refuses_what_is_not_argon2id(hashes: object, error: type[InvalidInput]) -> None:
    with pytest.raises(error):
        SecretQuestions.import_hashes(hashes, rules=AnswerRules())  # type: ignore[arg-type]


def test_import_refuses_unknown_questions(kit: Kit, alice: Subject) -> None:
    setup = SecretQuestions.import_hashes(
        {"colour": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaA"},
        rules=AnswerRules(count=1),
    )
    with pytest.raises(InvalidInput, match="unknown question"):
        kit.mfa.enroll(alice, setup)
    assert question_credentials(kit.mfa, alice) == []


def test_answers_are_rehashed_when_the_parameters_change(
    kit: Kit,
    enrolled: Credential,
    make_mfa: MakeMFA,
    store: MemoryStore,
    events: ListSink,
    alice: Subject,
) -> None:
    stronger = SecretHasher(time_cost=3, memory_cost=19456 * 2, parallelism=1)
    upgraded = build_kit(make_mfa, store, events, hasher=stronger)
    answer_now(upgraded.mfa, alice, GOOD)
    (credential,) = question_credentials(upgraded.mfa, alice)
    assert not any(stronger.needs_rehash(h) for h in stored_hashes(credential))


# ------------------------------------------------------------------------------------------
# what administrators and the store see
# ------------------------------------------------------------------------------------------
def test_the_admin_view_shows_questions_never_answers(
    make_mfa: MakeMFA, store: MemoryStore, events: ListSink, alice: Subject
) -> None:
    kit = build_kit(make_mfa, store, events, allow_free_text=True)
    answers = {"free:Name of my  first teacher?": "Mrs Smith", "pet": "Rexy", "city": "Paris"}
    kit.mfa.enroll(alice, SecretQuestions.setup(answers))
    texts = kit.mfa.secret_questions(alice)
    assert texts == ["Name of my first teacher?", CATALOGUE["pet"], CATALOGUE["city"]]
    shown = repr(texts).casefold()
    for answer in answers.values():
        assert normalize_answer(answer) not in shown
    assert kit.mfa.questions_need_update(alice) is False


def test_only_hashes_are_stored(kit: Kit, alice: Subject, bob: Subject) -> None:
    distinctive = {"pet": "Rexford Barkley", "city": "Parramatta", "school": "Saint Mary's Ursula"}
    kit.mfa.enroll(alice, SecretQuestions.setup(distinctive))
    kit.mfa.enroll(bob, SecretQuestions.setup(distinctive))
    answer_now(kit.mfa, alice, {k: v.upper() for k, v in distinctive.items()})
    with pytest.raises(InvalidCode):
        answer_now(kit.mfa, alice, {**distinctive, "pet": "Rexford Barkly"})
    text = at_rest_text(kit.store, kit.events)
    folded = text.casefold()
    for answer in distinctive.values():
        assert answer not in text
        assert normalize_answer(answer) not in folded
        assert normalize_answer("Rexford Barkly") not in folded
    credentials = [c for c in kit.store.dump()["credentials"] if isinstance(c, Credential)]
    assert len(credentials) == 2
    all_hashes = [h for c in credentials for h in stored_hashes(c)]
    assert len(set(all_hashes)) == 6  # unique salts: same answers, different hashes
    for encoded in all_hashes:
        assert encoded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


# ------------------------------------------------------------------------------------------
# timing, by counting argon2 computations (SECURITY.md 36)
# ------------------------------------------------------------------------------------------
def test_right_and_wrong_answers_cost_the_same_argon2_work(
    make_mfa: MakeMFA, store: MemoryStore, events: ListSink, alice: Subject, bob: Subject
) -> None:
    kit = build_kit(make_mfa, store, events, ask=2)
    credential = kit.mfa.enroll(alice, SecretQuestions.setup(GOOD))
    asked = kit.questions.select(credential)
    assert len(asked) == 2
    first, second = asked
    cases: dict[str, dict[str, str]] = {
        "right": {q: GOOD[q] for q in asked},
        "all-wrong": dict.fromkeys(asked, "Wrong answer"),
        "first-wrong": {first: "Wrong answer", second: GOOD[second]},
        "second-wrong": {first: GOOD[first], second: "Wrong answer"},
        "missing": {first: GOOD[first]},
        "empty": {},
    }
    costs: dict[str, int] = {}
    for name, answers in cases.items():
        challenge = kit.mfa.challenge(alice, "secret_questions")
        before = kit.hasher.calls
        try:
            kit.mfa.answer(alice, challenge.id, answers)
        except InvalidCode:
            assert name != "right"
        else:
            assert name == "right"
        costs[name] = kit.hasher.calls - before
    assert costs == dict.fromkeys(cases, len(asked))
    # A subject without questions is asked stable decoy questions from the catalogue, and
    # answering costs the same argon2 work per question (SECURITY.md 36).
    decoy = kit.mfa.challenge(bob, "secret_questions")
    assert len(decoy.prompts) == len(asked)
    assert set(decoy.prompts) <= set(CATALOGUE)
    assert kit.mfa.challenge(bob, "secret_questions").prompts == decoy.prompts
    before = kit.hasher.calls
    with pytest.raises(NotEnrolled) as caught:
        kit.mfa.answer(bob, decoy.id, dict.fromkeys(decoy.prompts, "Some answer"))
    assert kit.hasher.calls - before == len(asked)
    assert caught.value.public_message == InvalidCode("x").public_message
    # A set removed after the challenge was opened costs the same dummy work per question.
    challenge = kit.mfa.challenge(alice, "secret_questions")
    kit.mfa.remove(alice, credential.id, actor="admin1")
    before = kit.hasher.calls
    with pytest.raises(NotEnrolled):
        kit.mfa.answer(alice, challenge.id, {q: GOOD[q] for q in asked})
    assert kit.hasher.calls - before == len(asked)


# ------------------------------------------------------------------------------------------
# properties (Hypothesis)
# ------------------------------------------------------------------------------------------
@settings(database=None, deadline=None, max_examples=400)
@given(st.text(max_size=256))
@example("\u1e9e Stra\u00dfe  \ufb01sh\u3000\uff32\uff25\uff38")
@example("\u01f0\u0301")  # casefold decomposes, NFKC recomposes
@example(" \t\n\x1c\x1f ")
def test_normalize_answer_is_idempotent(raw: str) -> None:
    try:
        once = normalize_answer(raw)
    except InvalidInput:  # only when NFKC expanded the text past the cap
        expanded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", raw).casefold())
        assert len(" ".join(expanded.split())) > 256
        return
    assert normalize_answer(once) == once
    assert once == once.strip()
    assert "  " not in once


def test_normalize_answer_caps_the_expanded_length_and_stays_idempotent() -> None:
    """NFKC can turn one character into eighteen: the cap applies after expansion too."""
    with pytest.raises(InvalidInput):
        normalize_answer("\ufdfa" * 15)  # 15 characters in, 270 after NFKC
    once = normalize_answer("\ufdfa" * 14)  # 252 after NFKC: within the cap
    assert len(once) == 252
    assert normalize_answer(once) == once


ANSWER_CHARS: Final = string.ascii_letters + string.digits + " "
OTHER_ANSWERS: Final = {"pet": "Lassie Collie", "city": "Parramatta", "school": "St Mary's"}


@st.composite
def variants(draw: st.DrawFn, text: str) -> str:
    """``text`` with each character in random case or full width, each space run replaced
    by 1-3 random white-space characters, and random padding at both ends."""
    spaces = st.text(alphabet=" \t\u3000\u00a0", min_size=1, max_size=3)
    out = [draw(st.text(alphabet=" \t\u3000", max_size=2))]
    for char in text.strip():
        if char == " ":
            out.append(draw(spaces))
            continue
        form = draw(st.sampled_from(["lower", "upper", "wide-lower", "wide-upper"]))
        changed = char.lower() if form.endswith("lower") else char.upper()
        out.append(full_width(changed) if form.startswith("wide") else changed)
    out.append(draw(st.text(alphabet=" \t\u3000", max_size=2)))
    return "".join(out)


def usable(answer: str, qid: str) -> bool:
    normalized = normalize_answer(answer)
    taken = {normalize_answer(a) for q, a in OTHER_ANSWERS.items() if q != qid}
    personal = {"alice", "alice@example.com", normalize_answer(CATALOGUE[qid])}
    return len(normalized) >= 4 and normalized not in taken | personal


@settings(
    database=None,
    deadline=None,
    max_examples=15,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(qid=st.sampled_from(sorted(OTHER_ANSWERS)), data=st.data())
def test_any_variant_is_accepted_for_its_question_only(qid: str, data: st.DataObject) -> None:
    answer = data.draw(
        st.text(alphabet=ANSWER_CHARS, min_size=4, max_size=24).filter(lambda a: usable(a, qid)),
        label="answer",
    )
    variant = data.draw(variants(answer), label="variant")
    assert normalize_answer(variant) == normalize_answer(answer)
    factor = SecretQuestions(CATALOGUE, hasher=PROPERTY_HASHER)
    mfa = MFA(
        store=MemoryStore(),
        keyring=Keyring.ephemeral(),
        factors=[factor],
        clock=FakeClock(),
        lockout=NO_LOCK,
    )
    credential = mfa.enroll(ALICE, SecretQuestions.setup({**OTHER_ANSWERS, qid: answer}))
    # Accepted for its own question, in any case/width/space variant ...
    verification = answer_now(mfa, ALICE, {**OTHER_ANSWERS, qid: variant})
    assert verification.credential_id == credential.id
    # ... and refused for every other question of the set.
    for other in OTHER_ANSWERS:
        if other != qid:
            assert not factor.matches(credential, [other], {other: variant})
            assert not factor.matches(credential, [other], {other: answer})


def test_rehash_touches_only_the_questions_that_were_asked(
    make_mfa: MakeMFA, store: MemoryStore, events: ListSink, alice: Subject
) -> None:
    """An answer sent for a question that was not asked was never checked: never store it."""
    weak = build_kit(make_mfa, store, events, ask=2)
    weak.mfa.enroll(alice, SecretQuestions.setup(GOOD))
    stronger = SecretHasher(time_cost=3, memory_cost=19456, parallelism=1)
    kit = build_kit(make_mfa, store, events, ask=2, hasher=stronger)
    challenge = kit.mfa.challenge(alice, "secret_questions")
    (unasked,) = set(GOOD) - set(challenge.prompts)
    answers = {q: GOOD[q] for q in challenge.prompts} | {unasked: "attacker's choice"}
    kit.mfa.answer(alice, challenge.id, answers)
    (credential,) = question_credentials(kit.mfa, alice)
    hashes = dict(zip(kit.questions.questions(credential), stored_hashes(credential), strict=True))
    assert not stronger.needs_rehash(hashes[challenge.prompts[0]])  # asked: upgraded
    assert stronger.needs_rehash(hashes[unasked])  # not asked: untouched
    # The real answer to the unasked question still works; the attacker's does not.
    assert stronger.verify(hashes[unasked], f"{unasked}\x1f{normalize_answer(GOOD[unasked])}")
    assert not stronger.verify(hashes[unasked], f"{unasked}\x1fattacker's choice")


def test_an_empty_answer_never_matches_even_a_stored_placeholder(
    make_mfa: MakeMFA, store: MemoryStore, events: ListSink, alice: Subject
) -> None:
    kit = build_kit(make_mfa, store, events, rules=AnswerRules(min_length=1))
    kit.mfa.enroll(alice, SecretQuestions.setup({"pet": "-", "city": "x", "school": "y"}))
    with pytest.raises(InvalidCode):
        answer_now(kit.mfa, alice, {"pet": "", "city": "x", "school": "y"})
    assert answer_now(kit.mfa, alice, {"pet": "-", "city": "x", "school": "y"}).factor == (
        "secret_questions"
    )
