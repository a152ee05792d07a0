"""Administration and self-service reset (``mfakit._admin``).

The practice suite's "a role-holder resets a user's MFA, who then enrols again" and "users
may reset their own MFA when their phone changes"; the register's "admins see their
questions (never the answers)" and "user management report" (shared/reference/).
SECURITY.md 30, 35 (re-authentication for factor changes) and 37 (every change audited,
without secrets).

Everything runs on a :class:`FakeClock` with an :class:`Outbox`; secret questions use
``SecretHasher.owasp_minimum()`` for speed.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
from collections.abc import Callable, Mapping
from typing import Any, Final

import pytest

from mfakit import (
    MFA,
    Actor,
    Authorizer,
    ConfigurationError,
    Context,
    Credential,
    CredentialNotFound,
    DenyAll,
    Event,
    EventType,
    InvalidInput,
    InvalidType,
    Keyring,
    LockedOut,
    Lockout,
    MFAError,
    NotAuthorized,
    NotEnrolled,
    Policy,
    ReportRow,
    RoleAuthorizer,
    StepUpRequired,
    Subject,
)
from mfakit._admin import ADMIN_ACTIONS, REPORT_COLUMNS, _csv_cell
from mfakit.factors import SMSOTP, TOTP, AnswerRules, SecretQuestions, TOTPEnrollment
from mfakit.factors.secret_questions import normalize_answer
from mfakit.hazmat.hashing import SecretHasher
from mfakit.testing import FakeClock, ListSink, MemoryStore, Outbox, totp_now

T0: Final = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
CATALOGUE: Final = {
    "pet": "What was the name of your first pet?",
    "city": "In which city were you born?",
    "school": "What was the name of your primary school?",
    "street": "What street did you grow up on?",
}
GOOD: Final = {"pet": "Rexy", "city": "Paris", "school": "St Mary's"}
WEAK: Final = {"pet": "Al", "city": "Oz", "school": "Bo"}
ALICE_TYPED: Final = "0412 345 678"
ALICE_E164: Final = "+61412345678"
BOB_TYPED: Final = "0412 999 111"
INJECTION: Final = "=cmd|' /C calc'!A0"
HASHER: Final = SecretHasher.owasp_minimum()

ADMIN: Final = Actor("admin-1", tenant="t1", roles=frozenset({"user_admin"}))
HELPDESK: Final = Actor("helpdesk-1", tenant="t1", roles=frozenset({"helpdesk"}))
OTHER_TENANT_ADMIN: Final = Actor("admin-9", tenant="t2", roles=frozenset({"user_admin"}))
EVERYTHING: Final = RoleAuthorizer({action: {"user_admin"} for action in ADMIN_ACTIONS})


def person(name: str, *, tenant: str | None = "t1", **fields: Any) -> Subject:
    fields.setdefault("email", f"{name}@example.com")
    fields.setdefault("display_name", name.capitalize())
    return Subject(id=f"u-{name}", tenant=tenant, username=name, **fields)


ALICE: Final = person("alice")
BOB: Final = person("bob")
CAROL: Final = person("carol")
DAVE: Final = person("dave")
ERIN: Final = person("erin", display_name=INJECTION)
SERVICE: Final = person("svc", kind="service")
MALLORY: Final = person("mallory", tenant="t2")


@dataclasses.dataclass
class Kit:
    mfa: MFA
    store: MemoryStore
    events: ListSink
    clock: FakeClock
    outbox: Outbox
    #: Everything secret the tests created; no event may contain any of it.
    secrets: list[str] = dataclasses.field(default_factory=list)

    def enroll_totp(self, who: Subject) -> TOTPEnrollment:
        enrollment = self.mfa.enroll(who, TOTP.setup())
        code = totp_now(enrollment.secret, self.clock.now())
        self.mfa.confirm(who, enrollment.id, code)
        self.secrets += [enrollment.secret, code]
        self.clock.advance(30)
        return enrollment

    def sign_in_totp(self, who: Subject, enrollment: TOTPEnrollment) -> None:
        code = totp_now(enrollment.secret, self.clock.now())
        self.secrets.append(code)
        challenge = self.mfa.challenge(who, "totp")
        self.mfa.verify(who, challenge.id, code)
        self.clock.advance(30)

    def enroll_phone(self, who: Subject, typed: str) -> Credential:
        enrollment = self.mfa.enroll(who, SMSOTP.setup(typed, "AU"))
        code = self.outbox.last_code()
        self.secrets += [typed, typed.replace(" ", ""), code]
        return self.mfa.confirm(who, enrollment.id, code)

    def enroll_questions(self, who: Subject, answers: Mapping[str, str]) -> Credential:
        self.secrets += list(answers.values())
        return self.mfa.enroll(who, SecretQuestions.setup(answers))

    def import_weak_questions(self, who: Subject) -> Credential:
        hashes = {q: HASHER.hash(f"{q}\x1f{normalize_answer(a)}") for q, a in WEAK.items()}
        self.secrets += list(WEAK.values()) + list(hashes.values())
        setup = SecretQuestions.import_hashes(hashes, rules=AnswerRules(min_length=2))
        return self.mfa.enroll(who, setup)

    def fail_totp(self, who: Subject, times: int) -> None:
        for _ in range(times):
            challenge = self.mfa.challenge(who, "totp")
            with pytest.raises(MFAError):
                self.mfa.verify(who, challenge.id, "000000")

    def since(self, count: int) -> list[Event]:
        return self.events.events[count:]


def build(*, lockout: Lockout | None = None) -> Kit:
    clock = FakeClock(T0)
    store = MemoryStore()
    events = ListSink()
    outbox = Outbox()
    mfa = MFA(
        store=store,
        keyring=Keyring.ephemeral(),
        factors=[
            TOTP(issuer="ACME"),
            SMSOTP(sender=outbox, issuer="ACME"),
            SecretQuestions(CATALOGUE, hasher=HASHER),
        ],
        clock=clock,
        events=events,
        lockout=lockout if lockout is not None else Lockout.ism(),
        policy=Policy(primary=("totp", "sms")),
    )
    return Kit(mfa, store, events, clock, outbox)


@pytest.fixture
def kit() -> Kit:
    return build()


def admin_kit(authorizer: Authorizer = EVERYTHING) -> Kit:
    kit = build()
    kit.mfa.authorizer = authorizer
    return kit


def assert_no_secret(kit: Kit, events: list[Event]) -> None:
    text = repr(events)
    for secret in kit.secrets:
        assert secret not in text


# ------------------------------------------------------------------------------------------
# every admin action, as a callable over a kit with alice enrolled
# ------------------------------------------------------------------------------------------
def _reset(kit: Kit, actor: Actor, who: Subject) -> object:
    return kit.mfa.admin_reset(actor, who)


def _unlock(kit: Kit, actor: Actor, who: Subject) -> object:
    return kit.mfa.admin_unlock(actor, who)


def _remove(kit: Kit, actor: Actor, who: Subject) -> object:
    credential = kit.mfa.credentials(who)[0]
    return kit.mfa.admin_remove(actor, who, credential.id)


def _questions(kit: Kit, actor: Actor, who: Subject) -> object:
    return kit.mfa.admin_questions(actor, who)


def _report(kit: Kit, actor: Actor, who: Subject) -> object:
    return kit.mfa.report(actor, who.tenant, [who])


def _report_csv(kit: Kit, actor: Actor, who: Subject) -> object:
    return kit.mfa.report_csv(actor, who.tenant, [who])


Action = Callable[[Kit, Actor, Subject], object]
ACTIONS: Final[dict[str, tuple[str, Action]]] = {
    "reset": ("reset", _reset),
    "unlock": ("unlock", _unlock),
    "remove": ("remove_credential", _remove),
    "questions": ("view_questions", _questions),
    "report": ("report", _report),
    "report_csv": ("report", _report_csv),
}


def prepared(kit: Kit) -> Kit:
    """Alice with an authenticator app, a phone, questions and two failures."""
    kit.enroll_totp(ALICE)
    kit.enroll_phone(ALICE, ALICE_TYPED)
    kit.enroll_questions(ALICE, GOOD)
    kit.fail_totp(ALICE, 2)
    return kit


# ------------------------------------------------------------------------------------------
# refusals
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(ACTIONS))
def test_every_admin_action_is_refused_by_default(kit: Kit, name: str) -> None:
    prepared(kit)
    assert isinstance(kit.mfa.authorizer, DenyAll)
    before = kit.store.dump()
    seen = len(kit.events.events)
    action, call = ACTIONS[name]
    with pytest.raises(NotAuthorized) as info:
        call(kit, ADMIN, ALICE)
    assert info.value.action == action
    assert info.value.public_message == "You are not allowed to do that."
    assert kit.store.dump() == before
    events = kit.since(seen)
    assert len(events) == 1
    (refusal,) = events
    assert refusal.type is EventType.ADMIN_DENIED
    assert refusal.reason == "NotAuthorized"
    assert refusal.actor == ADMIN.id
    assert refusal.detail["action"] == action
    if action == "report":
        assert refusal.subject_id is None
        assert refusal.detail["tenant"] == "t1"
    else:
        assert refusal.subject_id == ALICE.id
        assert refusal.tenant == "t1"
    assert_no_secret(kit, events)


@pytest.mark.parametrize("name", list(ACTIONS))
@pytest.mark.parametrize("actor", [HELPDESK, OTHER_TENANT_ADMIN], ids=["role", "tenant"])
def test_role_authorizer_refuses_other_roles_and_other_tenants(name: str, actor: Actor) -> None:
    kit = prepared(admin_kit())
    before = kit.store.dump()
    with pytest.raises(NotAuthorized):
        ACTIONS[name][1](kit, actor, ALICE)
    assert kit.store.dump() == before
    assert kit.events.events[-1].actor == actor.id


@pytest.mark.parametrize("name", list(ACTIONS))
def test_role_authorizer_allows_the_right_role_in_the_same_tenant(name: str) -> None:
    action, call = ACTIONS[name]
    kit = prepared(admin_kit(RoleAuthorizer({action: {"user_admin", "owner"}})))
    call(kit, ADMIN, ALICE)
    # Only that action: the others stay refused.
    for other_name, (other_action, other_call) in ACTIONS.items():
        if other_action != action and other_name != "remove":
            with pytest.raises(NotAuthorized):
                other_call(kit, ADMIN, ALICE)


def test_role_authorizer_decisions() -> None:
    auth = RoleAuthorizer({"unlock": ["user_admin"], "report": ("auditor",)})
    assert auth.allowed(ADMIN, "unlock", ALICE, "t1") is True
    assert auth.allowed(ADMIN, "reset", ALICE, "t1") is False  # not in the table
    assert auth.allowed(ADMIN, "unlock", MALLORY, "t2") is False
    assert auth.allowed(ADMIN, "unlock", MALLORY, "t1") is False  # subject decides too
    assert auth.allowed(ADMIN, "unlock", ALICE, "t2") is False
    auditor = Actor("aud", tenant="t1", roles=frozenset({"auditor"}))
    assert auth.allowed(auditor, "report", None, "t1") is True
    assert auth.allowed(auditor, "report", None, "t2") is False
    assert auth.allowed(auditor, "report", None, None) is False
    support = Actor("support", tenant=None, roles=frozenset({"user_admin"}))
    assert auth.allowed(support, "unlock", ALICE, "t1") is False
    assert auth.allowed(support, "unlock", person("x", tenant=None), None) is True
    anywhere = RoleAuthorizer({"unlock": {"user_admin"}}, same_tenant=False)
    assert anywhere.allowed(support, "unlock", MALLORY, "t2") is True
    assert isinstance(auth, Authorizer)
    assert isinstance(DenyAll(), Authorizer)
    assert DenyAll().allowed(ADMIN, "report", None, "t1") is False
    assert "unlock" in repr(auth)


@pytest.mark.parametrize(
    "roles",
    [
        {"rest": {"user_admin"}},  # typo of "reset"
        {"reset": "user_admin"},  # a bare str would mean the roles "u", "s", "e", ...
        {"reset": {""}},
        {"reset": {3}},
        [("reset", {"user_admin"})],
    ],
)
def test_role_authorizer_refuses_bad_tables(roles: Any) -> None:
    with pytest.raises(ConfigurationError):
        RoleAuthorizer(roles)


def test_role_authorizer_needs_a_bool_same_tenant() -> None:
    with pytest.raises(ConfigurationError):
        RoleAuthorizer({}, same_tenant="no")  # type: ignore[arg-type]


class Truthy:
    def allowed(self, actor: Actor, action: str, subject: Subject | None, t: str | None) -> Any:
        return 1


class Broken:
    def allowed(self, actor: Actor, action: str, subject: Subject | None, t: str | None) -> bool:
        raise KeyError("role table unavailable")


@pytest.mark.parametrize("authorizer", [Truthy(), Broken()], ids=["truthy", "raises"])
def test_anything_but_true_refuses(authorizer: Authorizer) -> None:
    kit = prepared(admin_kit(authorizer))
    before = kit.store.dump()
    with pytest.raises(NotAuthorized):
        kit.mfa.admin_reset(ADMIN, ALICE)
    assert kit.store.dump() == before
    assert kit.events.events[-1].reason == "NotAuthorized"


def test_a_non_authorizer_is_a_configuration_error(kit: Kit) -> None:
    kit.mfa.authorizer = object()  # type: ignore[assignment]
    with pytest.raises(ConfigurationError):
        kit.mfa.admin_unlock(ADMIN, ALICE)


@pytest.mark.parametrize("name", list(ACTIONS))
@pytest.mark.parametrize("bad", ["admin-1", None, ALICE])
def test_a_non_actor_is_refused_before_anything(kit: Kit, name: str, bad: object) -> None:
    prepared(kit)
    kit.mfa.authorizer = EVERYTHING
    before = kit.store.dump()
    seen = len(kit.events.events)
    with pytest.raises(InvalidType):
        ACTIONS[name][1](kit, bad, ALICE)  # type: ignore[arg-type]
    assert kit.store.dump() == before
    assert kit.since(seen) == []


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"id": ""}, InvalidInput),
        ({"id": "   "}, InvalidInput),
        ({"id": "admin\nFAKE LOG LINE"}, InvalidInput),
        ({"id": "a" * 256}, InvalidInput),
        ({"id": 7}, InvalidType),
        ({"id": "a", "tenant": ""}, InvalidInput),
        ({"id": "a", "tenant": 1}, InvalidType),
        ({"id": "a", "roles": "admin"}, InvalidType),
        ({"id": "a", "roles": 5}, InvalidType),
        ({"id": "a", "roles": {"ok", ""}}, InvalidInput),
        ({"id": "a", "roles": {"ok", 3}}, InvalidType),
    ],
)
def test_actor_validation(kwargs: dict[str, Any], error: type[MFAError]) -> None:
    with pytest.raises(error):
        Actor(**kwargs)


def test_actor_roles_become_a_frozenset() -> None:
    actor = Actor("a", roles=["x", "y", "x"])  # type: ignore[arg-type]
    assert actor.roles == frozenset({"x", "y"})
    assert hash(actor) == hash(Actor("a", roles=frozenset({"y", "x"})))


def test_admin_remove_validates_the_id_before_authorising(kit: Kit) -> None:
    seen = len(kit.events.events)
    with pytest.raises(InvalidInput):
        kit.mfa.admin_remove(ADMIN, ALICE, "../etc/passwd")
    with pytest.raises(InvalidType):
        kit.mfa.admin_remove(ADMIN, ALICE, 5)  # type: ignore[arg-type]
    assert kit.since(seen) == []


# ------------------------------------------------------------------------------------------
# reset, unlock, remove, questions
# ------------------------------------------------------------------------------------------
def test_admin_reset_removes_everything_and_the_subject_enrols_again() -> None:
    kit = prepared(admin_kit())
    enrollment = kit.enroll_totp(BOB)
    kit.mfa.enroll(ALICE, TOTP.setup(label="pending"))  # a pending enrolment goes too
    assert kit.mfa.evaluate(ALICE).enroll == ()
    assert kit.mfa.lock_state(ALICE).failures == 2
    open_challenge = kit.mfa.challenge(ALICE, "totp")
    seen = len(kit.events.events)

    assert kit.mfa.admin_reset(ADMIN, ALICE) == 4

    assert kit.store.list_credentials(ALICE.id) == []
    decision = kit.mfa.evaluate(ALICE)
    assert decision.required
    assert decision.enroll == ("totp", "sms")
    assert decision.methods == ()
    state = kit.mfa.lock_state(ALICE)
    assert (state.failures, state.suspended, state.locked_until) == (0, False, None)
    with pytest.raises(NotEnrolled):
        kit.mfa.verify(ALICE, open_challenge.id, "123456")
    events = kit.since(seen)
    removed = [e for e in events if e.type is EventType.CREDENTIAL_REMOVED]
    assert {e.factor for e in removed} == {"totp", "sms", "secret_questions"}
    assert len(removed) == 4
    assert all(e.actor == ADMIN.id and e.reason == "admin_reset" for e in removed)
    assert sorted(e.detail["status"] for e in removed) == ["active", "active", "active", "pending"]
    (unlocked,) = [e for e in events if e.type is EventType.RESET]
    assert (unlocked.actor, unlocked.reason, unlocked.detail["removed"]) == (
        ADMIN.id,
        "admin_reset",
        4,
    )
    assert_no_secret(kit, events)
    # Bob is untouched.
    assert [c.factor for c in kit.mfa.credentials(BOB)] == ["totp"]
    kit.sign_in_totp(BOB, enrollment)


def test_admin_reset_of_a_subject_without_credentials(kit: Kit) -> None:
    kit.mfa.authorizer = EVERYTHING
    assert kit.mfa.admin_reset(ADMIN, ERIN) == 0
    assert kit.events.events[-1].type is EventType.RESET
    assert kit.events.events[-1].actor == ADMIN.id


def test_admin_unlock_clears_a_suspension(kit: Kit) -> None:
    kit.mfa.authorizer = EVERYTHING
    enrollment = kit.enroll_totp(CAROL)
    kit.fail_totp(CAROL, 5)  # Lockout.ism(): suspended after 5
    state = kit.mfa.lock_state(CAROL)
    assert state.suspended
    assert state.failures == 5
    challenge = kit.mfa.challenge(CAROL, "totp")
    with pytest.raises(LockedOut) as info:
        kit.mfa.verify(CAROL, challenge.id, totp_now(enrollment.secret, kit.clock.now()))
    assert info.value.suspended
    seen = len(kit.events.events)

    unlocked = kit.mfa.admin_unlock(ADMIN, CAROL)

    assert (unlocked.failures, unlocked.suspended, unlocked.locked_until) == (0, False, None)
    assert kit.mfa.lock_state(CAROL) == unlocked
    (event,) = kit.since(seen)
    assert (event.type, event.actor, event.subject_id) == (EventType.UNLOCKED, ADMIN.id, CAROL.id)
    kit.sign_in_totp(CAROL, enrollment)


def test_admin_remove_removes_one_credential(kit: Kit) -> None:
    kit.mfa.authorizer = EVERYTHING
    kit.enroll_totp(ALICE)
    phone = kit.enroll_phone(ALICE, ALICE_TYPED)
    seen = len(kit.events.events)
    removed = kit.mfa.admin_remove(ADMIN, ALICE, phone.id)
    assert removed.id == phone.id
    assert [c.factor for c in kit.mfa.credentials(ALICE)] == ["totp"]
    (event,) = kit.since(seen)
    assert event.type is EventType.CREDENTIAL_REMOVED
    assert (event.actor, event.reason, event.credential_id) == (ADMIN.id, "admin_remove", phone.id)
    assert_no_secret(kit, [event])
    with pytest.raises(CredentialNotFound):
        kit.mfa.admin_remove(ADMIN, ALICE, phone.id)


def test_admin_remove_of_another_subjects_credential_is_not_found(kit: Kit) -> None:
    kit.mfa.authorizer = EVERYTHING
    kit.enroll_totp(ALICE)
    bobs = kit.enroll_phone(BOB, BOB_TYPED)
    before = kit.store.dump()
    with pytest.raises(CredentialNotFound):
        kit.mfa.admin_remove(ADMIN, ALICE, bobs.id)
    assert kit.store.dump() == before
    assert kit.mfa.credentials(BOB) == [bobs]


def test_admin_questions_shows_texts_never_answers(kit: Kit) -> None:
    kit.mfa.authorizer = EVERYTHING
    credential = kit.enroll_questions(ALICE, GOOD)
    seen = len(kit.events.events)
    texts = kit.mfa.admin_questions(ADMIN, ALICE)
    assert texts == [CATALOGUE[q] for q in GOOD]
    shown = repr(texts).casefold()
    for answer in GOOD.values():
        assert answer.casefold() not in shown
        assert normalize_answer(answer) not in shown
    assert credential.secret.decode() not in shown
    (event,) = kit.since(seen)
    assert (event.type, event.actor, event.reason) == (
        EventType.POLICY_DECIDED,
        ADMIN.id,
        "admin_allowed",
    )
    assert event.detail == {"action": "view_questions", "count": 3}
    assert_no_secret(kit, [event])
    assert kit.mfa.admin_questions(ADMIN, ERIN) == []


def test_admin_questions_without_the_factor_is_a_configuration_error() -> None:
    mfa = MFA(
        store=MemoryStore(),
        keyring=Keyring.ephemeral(),
        factors=[TOTP(issuer="ACME")],
        clock=FakeClock(T0),
    )
    mfa.authorizer = EVERYTHING
    with pytest.raises(ConfigurationError):
        mfa.admin_questions(ADMIN, ALICE)
    (row,) = mfa.report(ADMIN, "t1", [ALICE])
    assert row.questions_need_update is False


# ------------------------------------------------------------------------------------------
# the report
# ------------------------------------------------------------------------------------------
def mixed(kit: Kit) -> list[Subject]:
    """Alice: TOTP (used since) and questions; Bob: SMS and a pending TOTP; Carol:
    suspended; Dave: questions under old rules; Erin: nothing (and a hostile name);
    a service account; Mallory of another tenant."""
    kit.mfa.authorizer = EVERYTHING
    alice_app = kit.enroll_totp(ALICE)
    kit.enroll_questions(ALICE, GOOD)
    kit.enroll_phone(BOB, BOB_TYPED)
    kit.mfa.enroll(BOB, TOTP.setup(label="new phone"))
    kit.enroll_totp(CAROL)
    kit.fail_totp(CAROL, 5)
    kit.import_weak_questions(DAVE)
    kit.enroll_totp(MALLORY)
    kit.clock.advance(minutes=5)
    kit.sign_in_totp(ALICE, alice_app)  # at T0 + 90 s + 5 min
    return [ALICE, BOB, CAROL, DAVE, ERIN, SERVICE, MALLORY, ALICE]


def expected_rows() -> list[ReportRow]:
    def row(who: Subject, **fields: Any) -> ReportRow:
        base: dict[str, Any] = {
            "subject_id": who.id,
            "username": who.username,
            "email": who.email,
            "display_name": who.display_name,
            "tenant": who.tenant,
            "factors": (),
            "pending": (),
            "last_used_at": None,
            "locked": False,
            "suspended": False,
            "locked_until": None,
            "failures": 0,
            "questions_need_update": True,
            "mfa_required": True,
        }
        base.update(fields)
        return ReportRow(**base)

    # TOTP confirmations count as a use; every enrolment moves the clock 30 s on.
    return [
        row(
            ALICE,
            factors=("totp", "secret_questions"),
            last_used_at=T0 + dt.timedelta(seconds=90, minutes=5),
            questions_need_update=False,
        ),
        row(BOB, factors=("sms",), pending=("totp",)),
        row(
            CAROL,
            factors=("totp",),
            last_used_at=T0 + dt.timedelta(seconds=30),
            locked=True,
            suspended=True,
            failures=5,
        ),
        row(DAVE, factors=("secret_questions",)),
        row(ERIN),
        row(SERVICE, mfa_required=False),
    ]


def test_report_rows_for_a_mixed_set(kit: Kit) -> None:
    subjects = mixed(kit)
    seen = len(kit.events.events)
    rows = kit.mfa.report(ADMIN, "t1", iter(subjects))
    assert rows == expected_rows()
    events = kit.since(seen)
    (audit,) = [e for e in events if e.reason == "admin_allowed"]
    assert audit.actor == ADMIN.id
    assert audit.detail == {"action": "report", "tenant": "t1", "rows": 6, "skipped": 1}
    # mfa_required comes from the policy: one POLICY_DECIDED per reported subject.
    assert len(events) == 7
    assert_no_secret(kit, events)


def test_report_shows_a_temporary_lock_while_it_lasts() -> None:
    kit = build(lockout=Lockout(max_failures=3))
    kit.mfa.authorizer = EVERYTHING
    kit.enroll_totp(CAROL)
    kit.fail_totp(CAROL, 3)
    (row,) = kit.mfa.report(ADMIN, "t1", [CAROL])
    assert (row.locked, row.suspended, row.failures) == (True, False, 3)
    assert row.locked_until == kit.clock.now() + dt.timedelta(seconds=30)
    kit.clock.advance(31)
    (row,) = kit.mfa.report(ADMIN, "t1", [CAROL])
    assert (row.locked, row.locked_until, row.failures) == (False, None, 3)


def test_report_skips_subjects_the_authorizer_refuses(kit: Kit) -> None:
    class NotBob:
        def allowed(
            self, actor: Actor, action: str, subject: Subject | None, tenant: str | None
        ) -> bool:
            return subject is None or subject.id != BOB.id

    kit.mfa.authorizer = NotBob()
    rows = kit.mfa.report(ADMIN, "t1", [ALICE, BOB, CAROL])
    assert [r.subject_id for r in rows] == [ALICE.id, CAROL.id]


def test_report_of_another_tenant_is_refused(kit: Kit) -> None:
    kit.mfa.authorizer = EVERYTHING
    with pytest.raises(NotAuthorized):
        kit.mfa.report(ADMIN, "t2", [MALLORY])
    assert kit.events.events[-1].detail == {"action": "report", "tenant": "t2"}


@pytest.mark.parametrize(
    ("tenant", "subjects", "error"),
    [
        ("t1", [ALICE, "u-bob"], InvalidType),
        ("t1", ALICE, InvalidType),
        ("t1", "u-alice", InvalidType),
        ("", [ALICE], InvalidInput),
        ("t1\r\nX", [ALICE], InvalidInput),
        (1, [ALICE], InvalidType),
    ],
)
def test_report_refuses_bad_input_before_anything(
    kit: Kit, tenant: Any, subjects: Any, error: type[MFAError]
) -> None:
    kit.mfa.authorizer = EVERYTHING
    with pytest.raises(error):
        kit.mfa.report(ADMIN, tenant, subjects)
    assert kit.events.events == []


def cell(value: object) -> str:
    """The test's own rendering of a report value (see ``report_csv``)."""
    if value is None:
        return ""
    if value is True or value is False:
        return str(value).lower()
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return ";".join(value)
    return str(value)


def test_report_csv_parses_back_to_the_same_values(kit: Kit) -> None:
    subjects = mixed(kit)
    text = kit.mfa.report_csv(ADMIN, "t1", subjects)
    header = next(csv.reader(io.StringIO(text)))
    assert header == [
        "subject_id",
        "username",
        "email",
        "display_name",
        "tenant",
        "factors",
        "pending",
        "last_used_at",
        "locked",
        "suspended",
        "locked_until",
        "failures",
        "questions_need_update",
        "mfa_required",
    ]
    assert tuple(header) == REPORT_COLUMNS
    parsed = list(csv.DictReader(io.StringIO(text)))
    expected = expected_rows()
    assert len(parsed) == len(expected)
    for got, want in zip(parsed, expected, strict=True):
        values = {name: cell(getattr(want, name)) for name in REPORT_COLUMNS}
        if want.subject_id == ERIN.id:
            assert values["display_name"] == INJECTION
            values["display_name"] = "'" + INJECTION
        assert got == values
    erin = next(r for r in parsed if r["subject_id"] == ERIN.id)
    assert erin["display_name"] == "'=cmd|' /C calc'!A0"
    alice = next(r for r in parsed if r["subject_id"] == ALICE.id)
    assert alice["factors"] == "totp;secret_questions"
    assert alice["last_used_at"] == "2026-01-01T00:06:30+00:00"
    assert text.endswith("\r\n")


@pytest.mark.parametrize(
    ("value", "cell_text"),
    [
        ("=1+1", "'=1+1"),
        ("+61412345678", "'+61412345678"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("  =1", "'  =1"),
        ("plain", "plain"),
        ("a=b", "a=b"),
        ("'quoted", "'quoted"),
        ("", ""),
    ],
)
def test_csv_cells_are_neutralised(value: str, cell_text: str) -> None:
    assert _csv_cell(value) == cell_text


def test_csv_injection_in_any_text_column(kit: Kit) -> None:
    kit.mfa.authorizer = EVERYTHING
    hostile = Subject(
        id="u-x",
        tenant="t1",
        username="@admin",
        email="-x@example.com",
        display_name='+HYPERLINK("http://evil")',
    )
    (row,) = csv.DictReader(io.StringIO(kit.mfa.report_csv(ADMIN, "t1", [hostile])))
    assert row["username"] == "'@admin"
    assert row["email"] == "'-x@example.com"
    assert row["display_name"] == '\'+HYPERLINK("http://evil")'


def test_report_csv_of_nobody_is_the_header_only(kit: Kit) -> None:
    kit.mfa.authorizer = EVERYTHING
    text = kit.mfa.report_csv(ADMIN, "t1", [])
    assert list(csv.reader(io.StringIO(text))) == [list(REPORT_COLUMNS)]


# ------------------------------------------------------------------------------------------
# self-service reset
# ------------------------------------------------------------------------------------------
def test_reset_own_needs_a_fresh_password(kit: Kit) -> None:
    kit.enroll_totp(ALICE)
    kit.enroll_phone(ALICE, ALICE_TYPED)
    now = kit.clock.now()
    stale = now - dt.timedelta(minutes=11)
    for context in (
        Context(now=now),
        Context(now=now, password_verified_at=stale, mfa_verified_at=now),
        Context(now=now, password_verified_at=now),  # MFA is required: a fresh factor too
        Context(now=now, password_verified_at=now, mfa_verified_at=stale),
    ):
        before = kit.store.dump()
        seen = len(kit.events.events)
        with pytest.raises(StepUpRequired) as info:
            kit.mfa.reset_own(ALICE, "sms", context=context)
        assert info.value.public_message == "Please enter your password again."
        assert kit.store.dump() == before
        refusal = kit.events.events[-1]
        assert (refusal.type, refusal.reason, refusal.actor) == (
            EventType.FAILED,
            "StepUpRequired",
            ALICE.id,
        )
        assert_no_secret(kit, kit.since(seen))
    assert sorted(c.factor for c in kit.mfa.credentials(ALICE)) == ["sms", "totp"]


def test_reset_own_with_a_fresh_password_removes_only_that_factor(kit: Kit) -> None:
    kit.enroll_totp(ALICE)
    kit.enroll_phone(ALICE, ALICE_TYPED)
    kit.enroll_phone(BOB, BOB_TYPED)
    kit.fail_totp(ALICE, 1)
    now = kit.clock.now()
    recent = now - dt.timedelta(minutes=2)
    # The action is forced to "remove_factor", whatever the host passed.
    context = Context(now=now, action="login", password_verified_at=recent, mfa_verified_at=now)
    seen = len(kit.events.events)

    assert kit.mfa.reset_own(ALICE, "sms", context=context) == 1

    assert [c.factor for c in kit.mfa.credentials(ALICE, include_pending=True)] == ["totp"]
    assert [c.factor for c in kit.mfa.credentials(BOB)] == ["sms"]
    assert kit.mfa.lock_state(ALICE).failures == 1  # a self-service reset lifts no lock
    events = kit.since(seen)
    (removed,) = [e for e in events if e.type is EventType.CREDENTIAL_REMOVED]
    assert (removed.actor, removed.reason, removed.factor) == (ALICE.id, "self_reset", "sms")
    (decided,) = [e for e in events if e.type is EventType.POLICY_DECIDED]
    assert decided.detail["action"] == "remove_factor"
    assert_no_secret(kit, events)
    # Nothing left of that factor: 0, and the subject then enrols the new phone.
    assert kit.mfa.reset_own(ALICE, "sms", context=context) == 0
    kit.enroll_phone(ALICE, BOB_TYPED)


def test_reset_own_without_mfa_required_needs_only_the_password() -> None:
    kit = build()
    kit.mfa.enroll(SERVICE, TOTP.setup())  # exempt kind: MFA not required; pending only
    now = kit.clock.now()
    context = Context(now=now, password_verified_at=now)
    assert kit.mfa.reset_own(SERVICE, "totp", context=context) == 1
    assert kit.store.list_credentials(SERVICE.id) == []


@pytest.mark.parametrize(
    ("factor", "context", "error"),
    [
        (1, "ok", InvalidType),
        ("totp", None, InvalidType),
        ("totp", {"now": T0}, InvalidType),
        ("fax", "ok", ConfigurationError),
    ],
)
def test_reset_own_refuses_bad_input(
    kit: Kit, factor: Any, context: Any, error: type[MFAError]
) -> None:
    kit.enroll_totp(ALICE)
    if context == "ok":
        context = Context(now=kit.clock.now(), password_verified_at=kit.clock.now())
    before = kit.store.dump()
    with pytest.raises(error):
        kit.mfa.reset_own(ALICE, factor, context=context)
    assert kit.store.dump() == before


# ------------------------------------------------------------------------------------------
# audit
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(ACTIONS))
def test_every_admin_action_emits_an_event_naming_the_actor(name: str) -> None:
    kit = prepared(admin_kit())
    seen = len(kit.events.events)
    ACTIONS[name][1](kit, ADMIN, ALICE)
    events = kit.since(seen)
    assert [e for e in events if e.actor == ADMIN.id]
    assert all(e.actor in (ADMIN.id, None) for e in events)
    assert_no_secret(kit, events)
    # The store holds none of them in clear either (the admin did not decrypt anything).
    assert kit.secrets
    dump = repr(kit.store.dump())
    assert ALICE_E164 not in dump
