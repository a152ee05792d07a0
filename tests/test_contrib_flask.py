"""``mfakit.contrib.flask`` with Flask's test client: CSRF, the flow in the session, guards.

A minimal host (one user, TOTP and a recovery PIN, the practice-suite policy with a
15-minute inactivity timeout) on a :class:`FakeClock`, so timeouts are tested without
waiting.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
from flask import Flask, g, request, session
from flask.testing import FlaskClient
from flask.typing import ResponseReturnValue

from mfakit import MFA, FlowState, FlowStep, Keyring, Policy, SignInFlow, Subject
from mfakit.contrib.flask import (
    FlaskMFA,
    check_csrf,
    csrf_token,
    mfa_required,
    step_required,
)
from mfakit.factors import TOTP, RecoveryPIN, TOTPEnrollment
from mfakit.hazmat.hashing import SecretHasher
from mfakit.storage import MemoryStore
from mfakit.testing import FakeClock, totp_now

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

ALICE = Subject(id="u-alice", tenant="t1", username="alice")


class Host:
    """The test host: an app, its flow, its glue, and what the user's phone knows."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.mfa = MFA(
            store=MemoryStore(),
            keyring=Keyring.ephemeral(),
            factors=[TOTP(issuer="ACME"), RecoveryPIN(hasher=SecretHasher.owasp_minimum())],
            clock=clock,
            policy=Policy.practice_suite(primary=("totp",)),
        )
        self.flow = SignInFlow(self.mfa)
        self.ended: list[str] = []
        self.app = Flask(__name__)
        self.app.config.update(SECRET_KEY="test", TESTING=True)
        self.glue = FlaskMFA(
            self.flow,
            load_subject=lambda: ALICE if session.get("user") == ALICE.id else None,
            login_endpoint="login",
            step_endpoints={
                FlowStep.ENROLL: "enroll",
                FlowStep.ENROLL_RECOVERY: "pin",
                FlowStep.CHALLENGE: "challenge",
                FlowStep.COMPLETE: "home",
            },
            on_end=self.ended.append,
            app=self.app,
        )
        self.setup: TOTPEnrollment | None = None
        self._routes()

    def _routes(self) -> None:
        app, glue, flow = self.app, self.glue, self.flow

        @app.route("/login", methods=["GET", "POST"])
        def login() -> ResponseReturnValue:
            if request.method == "POST":
                session.clear()
                session["user"] = ALICE.id
                state = glue.start(ALICE)
                return {"step": state.step.value, "url": glue.url_for_state(state)}
            return {"csrf": csrf_token()}

        @app.post("/enroll")
        @glue.step_required(FlowStep.ENROLL)
        def enroll() -> ResponseReturnValue:
            self.setup = glue.advance(lambda t, b: flow.enroll(ALICE, t, "totp", binding=b))
            return {"pending": g.mfakit_state.pending_id is None}

        @app.post("/enroll/confirm")
        @step_required(FlowStep.ENROLL)
        def enroll_confirm() -> ResponseReturnValue:
            assert self.setup is not None
            credential = self.mfa.confirm(ALICE, self.setup.id, request.form["code"])
            state = glue.advance(lambda t, b: flow.enrolled(ALICE, t, credential, binding=b))
            return {"step": state.step.value}

        @app.post("/pin")
        @glue.step_required(FlowStep.ENROLL_RECOVERY)
        def pin() -> ResponseReturnValue:
            pin = glue.advance(
                lambda t, b: flow.enroll(ALICE, t, RecoveryPIN.setup("480213"), binding=b)
            )
            state = glue.advance(lambda t, b: flow.enrolled(ALICE, t, pin, binding=b))
            return {"step": state.step.value}

        @app.route("/challenge", methods=["GET", "POST"])
        @glue.step_required(FlowStep.CHALLENGE)
        def challenge() -> ResponseReturnValue:
            if request.method == "GET":
                glue.advance(lambda t, b: flow.challenge(ALICE, t, "totp", binding=b))
                return {"step": "challenge"}
            state: FlowState = glue.advance(
                lambda t, b: flow.verify(ALICE, t, request.form["code"], binding=b)
            )
            return {"step": state.step.value}

        @app.get("/")
        @glue.required
        def home() -> ResponseReturnValue:
            return {"home": g.mfakit_subject.id, "complete": g.mfakit_state.complete}

        @app.get("/report")
        @mfa_required
        def report() -> ResponseReturnValue:
            return {"report": True}

        @app.post("/echo")
        def echo() -> ResponseReturnValue:
            return {"ok": True}


@pytest.fixture
def host() -> Host:
    return Host(FakeClock())


@pytest.fixture
def client(host: Host) -> Iterator[FlaskClient]:
    with host.app.test_client() as client:
        yield client


def token(client: FlaskClient) -> str:
    value = client.get("/login").get_json()["csrf"]
    assert isinstance(value, str)
    return value


def post(client: FlaskClient, path: str, **form: str) -> dict[str, object]:
    with client.session_transaction() as sess:
        csrf = sess.get("_mfakit_csrf")
    if csrf is None:
        csrf = token(client)
    response = client.post(path, data={CSRF_FIELD: csrf, **form})
    assert response.status_code == 200, (path, response.status_code, response.location)
    body = response.get_json()
    assert isinstance(body, dict)
    return body


def complete_sign_up(host: Host, client: FlaskClient) -> None:
    """Password, enrol the app, set the PIN: a complete sign-in."""
    assert post(client, "/login")["step"] == "enroll"
    post(client, "/enroll")
    assert host.setup is not None
    code = totp_now(host.setup.secret, host.clock.now())
    assert post(client, "/enroll/confirm", code=code)["step"] == "enroll_recovery"
    assert post(client, "/pin")["step"] == "complete"


# CSRF ------------------------------------------------------------------------------------------
def test_csrf_token_is_stable_per_session_and_random(host: Host) -> None:
    with host.app.test_request_context():
        first = csrf_token()
        assert csrf_token() == first
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", first)
        session.clear()
        assert csrf_token() != first
    with host.app.test_request_context():
        assert csrf_token() != first  # another session


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_unsafe_methods_without_the_token_are_refused(client: FlaskClient, method: str) -> None:
    token(client)
    assert client.open("/echo", method=method).status_code in (400, 405)
    assert client.post("/echo").status_code == 400
    assert client.post("/echo", data={CSRF_FIELD: "x" * 43}).status_code == 400
    assert client.post("/echo", data={CSRF_FIELD: ""}).status_code == 400


def test_the_token_in_the_form_or_the_header_is_accepted(client: FlaskClient) -> None:
    csrf = token(client)
    assert client.post("/echo", data={CSRF_FIELD: csrf}).status_code == 200
    assert client.post("/echo", headers={CSRF_HEADER: csrf}).status_code == 200
    assert client.post("/echo", headers={CSRF_HEADER: csrf + "x"}).status_code == 400


def test_a_session_without_a_token_refuses_every_post(client: FlaskClient) -> None:
    # No GET first: the session has no token, so nothing the client sends can match.
    assert client.post("/echo", data={CSRF_FIELD: ""}).status_code == 400
    assert client.post("/echo", data={CSRF_FIELD: "None"}).status_code == 400


def test_safe_methods_pass_without_a_token(host: Host) -> None:
    with host.app.test_request_context("/", method="GET"):
        check_csrf()  # does not raise
    with host.app.test_request_context("/", method="HEAD"):
        check_csrf()


def test_csrf_can_be_left_to_the_host() -> None:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "test"
    mfa = MFA(store=MemoryStore(), keyring=Keyring.ephemeral(), factors=[TOTP(issuer="A")])
    FlaskMFA(SignInFlow(mfa), load_subject=lambda: None, login_endpoint="x", csrf=False, app=app)

    @app.post("/echo")
    def echo() -> ResponseReturnValue:
        return "ok"

    assert app.test_client().post("/echo").status_code == 200
    assert app.jinja_env.globals["csrf_token"] is csrf_token


# the guard -------------------------------------------------------------------------------------
def test_nobody_signed_in_goes_to_the_login_page(client: FlaskClient) -> None:
    for path in ("/", "/report"):
        response = client.get(path)
        assert (response.status_code, response.location) == (302, "/login")


def test_password_only_is_sent_to_the_pending_step(host: Host, client: FlaskClient) -> None:
    body = post(client, "/login")
    assert body == {"step": "enroll", "url": "/enroll"}
    for path in ("/", "/report"):
        assert client.get(path).location == "/enroll"
    assert client.get("/challenge").location == "/enroll"  # not that step's page either
    post(client, "/enroll")
    assert host.setup is not None
    code = totp_now(host.setup.secret, host.clock.now())
    post(client, "/enroll/confirm", code=code)
    assert client.get("/").location == "/pin"  # factor set up, PIN not yet


def test_a_complete_sign_in_reaches_protected_pages(host: Host, client: FlaskClient) -> None:
    complete_sign_up(host, client)
    assert client.get("/").get_json() == {"home": "u-alice", "complete": True}
    assert client.get("/report").get_json() == {"report": True}
    assert client.get("/challenge").location == "/"  # a step page sends it home


def test_the_next_sign_in_asks_for_the_code(host: Host, client: FlaskClient) -> None:
    complete_sign_up(host, client)
    assert host.setup is not None
    host.clock.advance(seconds=30)
    assert post(client, "/login")["step"] == "challenge"
    assert client.get("/").location == "/challenge"
    assert client.get("/challenge").status_code == 200
    code = totp_now(host.setup.secret, host.clock.now())
    assert post(client, "/challenge", code=code)["step"] == "complete"
    assert client.get("/").status_code == 200


def test_the_inactivity_timeout_ends_the_session(host: Host, client: FlaskClient) -> None:
    complete_sign_up(host, client)
    host.clock.advance(minutes=14)
    assert client.get("/").status_code == 200  # activity: the timeout restarts
    host.clock.advance(minutes=14, seconds=59)
    assert client.get("/").status_code == 200
    host.clock.advance(minutes=15)
    response = client.get("/")
    assert (response.status_code, response.location) == (302, "/login")
    assert host.ended == ["idle"]
    with client.session_transaction() as sess:
        assert "user" not in sess
        assert "_mfakit_flow" not in sess
        assert sess["_flashes"] == [("warning", FlaskMFA.idle_message)]
    assert client.get("/").location == "/login"


def test_the_session_lifetime_ends_the_session(host: Host, client: FlaskClient) -> None:
    complete_sign_up(host, client)
    for _ in range(24 * 6):  # active every 10 minutes for a day
        host.clock.advance(minutes=10)
        if client.get("/").status_code != 200:
            break
    assert client.get("/").location == "/login"
    # At the lifetime the complete token itself expires (docs/flow.md).
    assert host.ended == ["expired"]


def test_a_tampered_or_foreign_flow_token_ends_the_session(host: Host, client: FlaskClient) -> None:
    complete_sign_up(host, client)
    with client.session_transaction() as sess:
        sess["_mfakit_binding"] = "another session's binding"
    response = client.get("/")
    assert (response.status_code, response.location) == (302, "/login")
    assert host.ended == ["invalid"]


def test_a_pending_flow_expires(host: Host, client: FlaskClient) -> None:
    post(client, "/login")
    host.clock.advance(minutes=10)  # the pending token lives 10 minutes
    assert client.get("/challenge").location == "/login"
    assert host.ended == ["expired"]


def test_advance_without_a_sign_in_raises(host: Host) -> None:
    from mfakit import InvalidFlowToken

    with host.app.test_request_context(), pytest.raises(InvalidFlowToken):
        host.glue.advance(lambda t, b: (t, None))


def test_a_failed_step_keeps_the_token(host: Host) -> None:
    from mfakit import FlowStepError

    with host.app.test_request_context():
        host.glue.start(ALICE)
        before = session["_mfakit_flow"]
        with pytest.raises(FlowStepError):  # not at the challenge step
            host.glue.advance(lambda t, b: host.flow.challenge(ALICE, t, "totp", binding=b))
        assert session["_mfakit_flow"] == before
        host.glue.advance(lambda t, b: host.flow.enroll(ALICE, t, "totp", binding=b))
        assert session["_mfakit_flow"] != before


def test_session_status_without_a_complete_sign_in_is_none(host: Host) -> None:
    with host.app.test_request_context():
        assert host.glue.session_status(ALICE) is None
        assert host.glue.state(ALICE) is None
        host.glue.start(ALICE)
        assert host.glue.session_status(ALICE) is None  # pending
        state = host.glue.state(ALICE)
        assert state is not None
        assert state.step is FlowStep.ENROLL
        session["_mfakit_last_activity"] = "not a time"
        assert host.glue.session_status(ALICE) is None


def test_module_level_decorators_need_init_app() -> None:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="test")

    @app.get("/")
    @mfa_required
    def home() -> ResponseReturnValue:
        return "home"

    @app.get("/step")
    @step_required(FlowStep.CHALLENGE)
    def step() -> ResponseReturnValue:
        return "step"

    app.testing = False
    client = app.test_client()
    assert client.get("/").status_code == 500
    assert client.get("/step").status_code == 500


def test_step_required_takes_flow_steps(host: Host) -> None:
    with pytest.raises(TypeError):
        host.glue.step_required()
    with pytest.raises(TypeError):
        host.glue.step_required("challenge")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        step_required()


def test_nothing_secret_is_kept_in_the_session(host: Host, client: FlaskClient) -> None:
    complete_sign_up(host, client)
    assert host.setup is not None
    with client.session_transaction() as sess:
        stored = repr(dict(sess))
    for secret in (host.setup.secret, "480213"):
        assert secret not in stored
    assert sorted(k for k in dict(sess) if k.startswith("_mfakit")) == [
        "_mfakit_binding",
        "_mfakit_csrf",
        "_mfakit_flow",
        "_mfakit_last_activity",
    ]
    assert dt.datetime.fromisoformat(str(dict(sess)["_mfakit_last_activity"])) == host.clock.now()
