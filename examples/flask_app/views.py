"""The pages: password sign-up and sign-in, the MFA steps, the home page, administration and
the development outbox.

Every page of a step is guarded by ``glue.step_required``; every page behind the sign-in by
``glue.required`` (``mfakit.contrib.flask``). The views only translate forms into flow
steps and mfakit's exceptions into messages (their ``public_message``).
"""

from __future__ import annotations

import datetime as dt
from typing import cast

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
)
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from mfakit import (
    Actor,
    Challenge,
    Credential,
    DeliveryError,
    ExpiredCode,
    FlowError,
    FlowState,
    FlowStep,
    InvalidInput,
    LockedOut,
    NotAuthorized,
    PhoneNumberError,
    SendRefused,
    Subject,
    UnsupportedRegion,
    VerificationFailed,
)
from mfakit.contrib.flask import FlaskMFA, mfa_required, step_required
from mfakit.factors import SMSOTP, TOTP, RecoveryPIN
from mfakit.testing import SentSMS

from . import Services
from .practice import ADMIN_ROLE, COUNTRIES
from .users import SignUpError, User

auth = Blueprint("auth", __name__)
mfa_bp = Blueprint("mfa", __name__, url_prefix="/mfa")
main = Blueprint("main", __name__)
admin = Blueprint("admin", __name__, url_prefix="/admin")
dev = Blueprint("dev", __name__, url_prefix="/dev")

POSSESSION = ("totp", "sms")
FACTOR_NAMES = {"totp": "Authenticator app", "sms": "SMS", "recovery_pin": "Recovery PIN"}


# services and the signed-in user -------------------------------------------------------------
def services() -> Services:
    return cast(Services, current_app.extensions["flask_app"])


def _glue() -> FlaskMFA:
    return services().glue


def current_user() -> User | None:
    """The user who passed the password in this session (cached for the request)."""
    if "app_user" not in g:
        user_id = session.get("user_id")
        g.app_user = services().accounts.get(user_id) if isinstance(user_id, int) else None
    return cast("User | None", g.app_user)


def current_subject() -> Subject | None:
    """``FlaskMFA``'s ``load_subject``."""
    user = current_user()
    return None if user is None else user.subject(services().tenant)


def end_server_session(reason: str) -> None:
    """``FlaskMFA``'s ``on_end``: the session record goes, so the cookie is dead for good."""
    sid = session.get("sid")
    if isinstance(sid, str):
        services().accounts.end_session(sid)


def _check_server_session() -> None:
    """Sign out a cookie whose session was ended (sign-out, reset, rotation)."""
    user_id, sid = session.get("user_id"), session.get("sid")
    if user_id is None and sid is None:
        return
    if not isinstance(sid, str) or services().accounts.session_user(sid) != user_id:
        session.clear()


def _state() -> FlowState:
    return cast(FlowState, g.mfakit_state)


def _subject() -> Subject:
    return cast(Subject, g.mfakit_subject)


def _user() -> User:
    user = current_user()
    assert user is not None  # the guards ran
    return user


# the sign-in -----------------------------------------------------------------------------------
def _password_accepted(user: User) -> ResponseReturnValue:
    """A new sign-in: a fresh session (no fixation), then the flow decides the next step."""
    accounts, glue = services().accounts, _glue()
    session.clear()
    session.permanent = True
    session["user_id"] = user.id
    session["sid"] = accounts.new_session(user.id)
    g.pop("app_user", None)
    subject = user.subject(services().tenant)
    state = glue.start(subject)
    if state.step is FlowStep.CHALLENGE:
        _open_challenge(subject, None)
    return redirect(glue.url_for_state(state))


def _complete() -> ResponseReturnValue:
    """Second factor done: rotate the session id (SECURITY.md 32) and let the user in."""
    accounts = services().accounts
    old = session.get("sid")
    if isinstance(old, str):
        accounts.end_session(old)
    session["sid"] = accounts.new_session(_user().id)
    _glue().touch()
    return redirect("/")


def _preferred_factor(subject: Subject) -> str:
    """The factor to ask for: the most recently enrolled active possession factor."""
    decision = services().mfa.evaluate(subject)
    enrolled = [c.factor for c in services().mfa.credentials(subject) if c.factor in POSSESSION]
    usable = [f for f in enrolled if f in decision.methods]
    return usable[-1] if usable else decision.methods[0]


def _open_challenge(subject: Subject, factor: str | None) -> None:
    """Open this sign-in's challenge (for SMS: send the code); a send refusal is flashed."""
    flow, glue = services().flow, _glue()
    name = factor or _preferred_factor(subject)
    try:
        glue.advance(lambda token, binding: flow.challenge(subject, token, name, binding=binding))
    except (SendRefused, DeliveryError) as exc:
        flash(exc.public_message, "error")


@auth.route("/signup", methods=["GET", "POST"])
def signup() -> ResponseReturnValue:
    error = None
    if request.method == "POST":
        form = request.form
        if form.get("password", "") != form.get("password2", ""):
            error = "The two passwords are not the same."
        else:
            try:
                user = services().accounts.create(
                    form.get("username", ""), form.get("password", ""), form.get("name", "")
                )
            except SignUpError as exc:
                error = str(exc)
            else:
                if services().development and services().accounts.count() == 1:
                    services().accounts.set_admin(user.username)
                    flash("The first account of a development server is an administrator.")
                return _password_accepted(user)
    return render_template("signup.html", error=error), 200 if error is None else 400


@auth.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    error = None
    if request.method == "POST":
        user = services().accounts.authenticate(
            request.form.get("username", ""), request.form.get("password", "")
        )
        if user is not None:
            return _password_accepted(user)
        error = "Incorrect username or password."
    return render_template("login.html", error=error), 200 if error is None else 401


@auth.post("/logout")
def logout() -> ResponseReturnValue:
    _glue().end("signed_out")
    flash("You are signed out.")
    return redirect("/login")


# the MFA steps -------------------------------------------------------------------------------
def _after_enrolled(before: FlowState, credential: Credential) -> ResponseReturnValue:
    """Tell the flow; after a recovery, the lost device's credentials go (docs/flow.md)."""
    subject, mfa, flow = _subject(), services().mfa, services().flow
    state = _glue().advance(
        lambda token, binding: flow.enrolled(subject, token, credential, binding=binding)
    )
    if before.recovered:
        for old in mfa.credentials(subject):
            if old.factor in POSSESSION and old.id != credential.id:
                mfa.remove(subject, old.id, actor=subject.id)
        flash("Your new sign-in method replaces the old one.")
    if state.complete:
        return _complete()
    return redirect(_glue().url_for_state(state))


@mfa_bp.get("/choose")
@step_required(FlowStep.ENROLL)
def choose() -> ResponseReturnValue:
    decision = services().mfa.evaluate(_subject())
    return render_template(
        "choose.html", recovered=_state().recovered, sms_notice="sms_restricted" in decision.notices
    )


@mfa_bp.post("/app")
@step_required(FlowStep.ENROLL)
def app_start() -> ResponseReturnValue:
    """Start an authenticator-app enrolment: the QR code and key are shown once, here."""
    subject, flow = _subject(), services().flow
    setup = _glue().advance(
        lambda token, binding: flow.enroll(
            subject, token, TOTP.setup(label="Authenticator app"), binding=binding
        )
    )
    return render_template(
        "app_enrol.html", qr=setup.qr_data_uri(), key=setup.grouped_secret, error=None
    )


@mfa_bp.post("/app/confirm")
@step_required(FlowStep.ENROLL)
def app_confirm() -> ResponseReturnValue:
    state = _state()
    if state.pending_id is None:
        return redirect("/mfa/choose")
    try:
        credential = services().mfa.confirm(
            _subject(), state.pending_id, request.form.get("code", "")
        )
    except VerificationFailed as exc:
        return render_template("app_enrol.html", qr=None, key=None, error=exc.public_message), 400
    return _after_enrolled(state, credential)


def _pending_sms() -> tuple[Credential, Challenge | None] | None:
    """The phone being enrolled in this sign-in, and its challenge."""
    state, store = _state(), services().store
    if state.pending_id is None:
        return None
    pending = store.get_credential(state.pending_id)
    if pending is None or pending.subject_id != _subject().id or pending.factor != "sms":
        return None
    return pending, store.get_challenge(str(pending.params.get("challenge_id", "")))


def _seconds_until(when: dt.datetime | None) -> int:
    if when is None:
        return 0
    now = services().mfa.clock.now()
    return max(0, int((when - now).total_seconds() + 0.999))


@mfa_bp.route("/sms", methods=["GET", "POST"])
@step_required(FlowStep.ENROLL)
def sms() -> ResponseReturnValue:
    """The country picker and the number; "Other" is refused with the reference's hint."""
    error, offer_app = None, False
    country, number = "AU", ""
    if request.method == "POST":
        country, number = request.form.get("country", ""), request.form.get("number", "")
        region = country if country in {code for code, _ in COUNTRIES[:-1]} else None
        subject, flow = _subject(), services().flow
        try:
            _glue().advance(
                lambda token, binding: flow.enroll(
                    subject, token, SMSOTP.setup(number, region, label="Mobile"), binding=binding
                )
            )
        except UnsupportedRegion as exc:
            error, offer_app = exc.public_message, True
        except (PhoneNumberError, SendRefused, DeliveryError) as exc:
            error = exc.public_message
        else:
            return redirect("/mfa/sms/confirm")
    status = 200 if error is None else 400
    return render_template(
        "sms_enrol.html", error=error, offer_app=offer_app, country=country, number=number
    ), status


@mfa_bp.route("/sms/confirm", methods=["GET", "POST"])
@step_required(FlowStep.ENROLL)
def sms_confirm() -> ResponseReturnValue:
    pending = _pending_sms()
    if pending is None:
        return redirect("/mfa/sms")
    credential, challenge = pending
    error, status = None, 200
    if request.method == "POST":
        try:
            confirmed = services().mfa.confirm(
                _subject(), credential.id, request.form.get("code", "")
            )
        except ExpiredCode:
            error, status = "The code has expired. Select Resend for a new one.", 400
        except VerificationFailed as exc:
            error, status = exc.public_message, 400
        else:
            return _after_enrolled(_state(), confirmed)
    return render_template(
        "code.html",
        title="Check your phone",
        factor="sms",
        hint=credential.params.get("hint"),
        action="/mfa/sms/confirm",
        resend_action="/mfa/sms/resend",
        resend_in=_seconds_until(None if challenge is None else challenge.resend_at),
        error=error,
        others=(),
        recovery=False,
    ), status


@mfa_bp.post("/sms/resend")
@step_required(FlowStep.ENROLL)
def sms_resend() -> ResponseReturnValue:
    pending = _pending_sms()
    if pending is None:
        return redirect("/mfa/sms")
    _resend(str(pending[0].params.get("challenge_id", "")))
    return redirect("/mfa/sms/confirm")


def _resend(challenge_id: str) -> None:
    try:
        services().mfa.resend(_subject(), challenge_id)
    except (SendRefused, DeliveryError, VerificationFailed) as exc:
        flash(exc.public_message, "error")
    else:
        flash("A new code is on its way. The previous one no longer works.")


@mfa_bp.route("/pin", methods=["GET", "POST"])
@step_required(FlowStep.ENROLL_RECOVERY)
def pin() -> ResponseReturnValue:
    """ "You will be prompted to create a Recovery PIN"."""
    error = None
    if request.method == "POST":
        subject, flow = _subject(), services().flow
        chosen = request.form.get("pin", "")
        if chosen != request.form.get("pin2", ""):
            error = "The two PINs are not the same."
        else:
            try:
                credential = _glue().advance(
                    lambda token, binding: flow.enroll(
                        subject, token, RecoveryPIN.setup(chosen), binding=binding
                    )
                )
            except InvalidInput as exc:
                error = exc.public_message
            else:
                return _after_enrolled(_state(), credential)
    return render_template("pin.html", error=error), 200 if error is None else 400


@mfa_bp.route("/verify", methods=["GET", "POST"])
@step_required(FlowStep.CHALLENGE)
def verify() -> ResponseReturnValue:
    """The code (or, with "Use your recovery PIN", the PIN) of this sign-in."""
    subject, state, mfa, flow = _subject(), _state(), services().mfa, services().flow
    error, status = None, 200
    if request.method == "POST":
        code = request.form.get("code", "")
        try:
            new = _glue().advance(
                lambda token, binding: flow.verify(subject, token, code, binding=binding)
            )
        except LockedOut as exc:
            error, status = exc.public_message, 429
        except ExpiredCode:
            error, status = "The code has expired. Select Resend for a new one.", 400
        except VerificationFailed as exc:
            error, status = exc.public_message, 400
        else:
            if new.complete:
                return _complete()
            if new.recovered:
                flash("You are in with your recovery PIN. Set up your authenticator app or phone.")
            return redirect(_glue().url_for_state(new))
    challenge = None if state.challenge_id is None else mfa.store.get_challenge(state.challenge_id)
    factor = None if challenge is None else challenge.factor
    decision = mfa.evaluate(subject)
    enrolled = {c.factor for c in mfa.credentials(subject)}
    others = [f for f in decision.methods if f in enrolled and f != factor]
    return render_template(
        "code.html",
        title="Enter your recovery PIN" if factor == "recovery_pin" else "Verify it's you",
        factor=factor,
        hint=None if challenge is None else challenge.destination_hint,
        action="/mfa/verify",
        resend_action="/mfa/verify/resend",
        resend_in=_seconds_until(None if challenge is None else challenge.resend_at),
        error=error,
        others=[(f, FACTOR_NAMES[f]) for f in others],
        recovery=factor != "recovery_pin" and "recovery_pin" in decision.recovery,
    ), status


@mfa_bp.post("/verify/method")
@step_required(FlowStep.CHALLENGE)
def verify_method() -> ResponseReturnValue:
    """Switch method: another enrolled factor, or the recovery PIN ("device lost")."""
    factor = request.form.get("factor", "")
    decision = services().mfa.evaluate(_subject())
    if factor not in (*decision.methods, *decision.recovery):
        abort(400)
    _open_challenge(_subject(), factor)
    return redirect("/mfa/verify")


@mfa_bp.post("/verify/resend")
@step_required(FlowStep.CHALLENGE)
def verify_resend() -> ResponseReturnValue:
    if _state().challenge_id is not None:
        _resend(_state().challenge_id or "")
    return redirect("/mfa/verify")


# signed in --------------------------------------------------------------------------------------
@main.get("/")
@mfa_required
def home() -> ResponseReturnValue:
    credentials = services().mfa.credentials(_subject())
    methods = []
    for credential in credentials:
        name = FACTOR_NAMES.get(credential.factor, credential.factor)
        detail = credential.params.get("hint") or credential.label
        methods.append((name, "" if detail == name else detail))
    return render_template("home.html", user=_user(), methods=methods)


def _admin_actor() -> Actor:
    """The signed-in administrator, or 403."""
    user = _user()
    if not user.is_admin:
        abort(403)
    return Actor(id=f"user-{user.id}", tenant=services().tenant, roles=frozenset({ADMIN_ROLE}))


@admin.get("/")
@mfa_required
def users() -> ResponseReturnValue:
    actor, svc = _admin_actor(), services()
    accounts = svc.accounts.all()
    report = svc.mfa.report(actor, svc.tenant, [u.subject(svc.tenant) for u in accounts])
    by_subject = {row.subject_id: row for row in report}
    rows = [(u, by_subject[f"user-{u.id}"]) for u in accounts if f"user-{u.id}" in by_subject]
    return render_template("admin.html", rows=rows)


def _target(user_id: int) -> User:
    user = services().accounts.get(user_id)
    if user is None:
        abort(404)
    return user


@admin.post("/users/<int:user_id>/reset")
@mfa_required
def reset(user_id: int) -> ResponseReturnValue:
    """ "Reset MFA, which will then prompt the user to set up the MFA again"."""
    actor, svc, target = _admin_actor(), services(), _target(user_id)
    removed = svc.mfa.admin_reset(actor, target.subject(svc.tenant))
    ended = svc.accounts.end_sessions_of(target.id)  # signed out everywhere, at once
    flash(
        f"MFA reset for {target.username}: {removed} method(s) removed, "
        f"{ended} session(s) ended. They set up MFA again at their next sign-in."
    )
    return redirect("/admin/")


@admin.post("/users/<int:user_id>/unlock")
@mfa_required
def unlock(user_id: int) -> ResponseReturnValue:
    actor, svc, target = _admin_actor(), services(), _target(user_id)
    svc.mfa.admin_unlock(actor, target.subject(svc.tenant))
    flash(f"{target.username} is unlocked.")
    return redirect("/admin/")


@dev.get("/outbox")
def outbox() -> ResponseReturnValue:
    """DEVELOPMENT ONLY: the texts and e-mails "sent", codes included."""
    box = services().outbox
    entries: list[dict[str, str]] = []
    for message in [] if box is None else box.messages[::-1]:
        if isinstance(message, SentSMS):
            entries.append({"kind": "SMS", "to": message.to, "subject": "", "text": message.text})
        else:
            body = message.get_body(preferencelist=("plain",))
            entries.append(
                {
                    "kind": "E-mail",
                    "to": str(message["To"]),
                    "subject": str(message["Subject"]),
                    "text": "" if body is None else str(body.get_content()),
                }
            )
    return render_template("outbox.html", messages=entries)


# wiring ----------------------------------------------------------------------------------------
def register(app: Flask, *, development: bool) -> None:
    """Add the blueprints (the outbox only in development) and the error pages."""
    app.before_request(_check_server_session)
    app.jinja_env.globals["factor_names"] = FACTOR_NAMES
    for blueprint in (auth, mfa_bp, main, admin):
        app.register_blueprint(blueprint)
    if development:
        app.register_blueprint(dev)

    @app.errorhandler(FlowError)
    def flow_refused(exc: FlowError) -> ResponseReturnValue:
        # Never fall back to a signed-in state: start again (docs/flow.md).
        _glue().end("invalid")
        flash(exc.public_message, "warning")
        return redirect("/login")

    @app.errorhandler(NotAuthorized)
    def not_authorized(exc: NotAuthorized) -> ResponseReturnValue:
        return render_template("error.html", message=exc.public_message), 403

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        return render_template("error.html", message=exc.description), exc.code or 500
