"""Flask glue for mfakit: CSRF tokens, the sign-in flow kept in the session, and a guard.

Needs Flask (``pip install "mfakit[flask]"``). Three small pieces, each usable alone:

* :func:`csrf_token` and :func:`check_csrf`: a per-session token that every state-changing
  request must send back (a hidden ``csrf_token`` form field or an ``X-CSRF-Token``
  header), compared in constant time (OWASP CSRF prevention cheat sheet, "synchronizer
  token pattern").
* :class:`FlaskMFA`: keeps the :class:`~mfakit.SignInFlow` token and its session binding in
  :data:`flask.session` (:meth:`~FlaskMFA.start`, :meth:`~FlaskMFA.advance`,
  :meth:`~FlaskMFA.state`, :meth:`~FlaskMFA.end`), and registers the CSRF check and a
  ``csrf_token()`` template global with :meth:`~FlaskMFA.init_app`.
* :meth:`FlaskMFA.required` (or the module-level :func:`mfa_required`): a view decorator
  that lets a request through only when the sign-in is complete and the session is within
  the policy's lifetime and inactivity timeout; a user who passed the password but not the
  second factor is sent to the page of the step they are at (SECURITY.md 32).
  :meth:`FlaskMFA.step_required` (or :func:`step_required`) guards the pages of those
  steps.

Typical wiring::

    flow = SignInFlow(mfa)
    glue = FlaskMFA(
        flow,
        load_subject=current_subject,       # the user who passed the password, or None
        login_endpoint="auth.login",
        step_endpoints={FlowStep.ENROLL: "mfa.choose", FlowStep.CHALLENGE: "mfa.verify"},
    )
    glue.init_app(app)

    @app.post("/login")
    def login():
        ...  # check the password
        session.clear()
        session["user_id"] = user.id
        state = glue.start(subject)
        return redirect(glue.url_for_state(state))

    @app.get("/")
    @glue.required
    def home(): ...

The flow token is signed and holds identifiers and times only (SECURITY.md 31), so it may
live in Flask's default cookie session; the binding is a random value of this session, so
a token copied into another session is refused.
"""

from __future__ import annotations

import datetime as dt
import functools
import hmac
import secrets
from collections.abc import Callable, Mapping
from typing import Any, Final, ParamSpec, TypeVar

from flask import Flask, abort, current_app, flash, g, redirect, request, session, url_for
from flask.typing import ResponseReturnValue

from mfakit._flow import FlowState, FlowStep, SignInFlow
from mfakit._models import Subject
from mfakit._policy import SessionStatus
from mfakit.exceptions import FlowError, FlowExpired, InvalidFlowToken

__all__ = [
    "FlaskMFA",
    "check_csrf",
    "csrf_token",
    "mfa_required",
    "step_required",
]

_CSRF_FIELD: Final = "csrf_token"
_CSRF_HEADER: Final = "X-CSRF-Token"

_CSRF_KEY: Final = "_mfakit_csrf"
_FLOW_KEY: Final = "_mfakit_flow"
_BINDING_KEY: Final = "_mfakit_binding"
_ACTIVITY_KEY: Final = "_mfakit_last_activity"
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_EXTENSION: Final = "mfakit"

P = ParamSpec("P")
T = TypeVar("T")
View = Callable[P, ResponseReturnValue]


def csrf_token() -> str:
    """The CSRF token of the current session, created on first use.

    Put it in every form as a hidden field named ``csrf_token``; :func:`check_csrf`
    refuses a state-changing request without it. Clearing the session (as a sign-in should)
    makes a new one.

    Returns:
        43 URL-safe characters (256 random bits from :mod:`secrets`).
    """
    token = session.get(_CSRF_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[_CSRF_KEY] = token
    return token


def check_csrf() -> None:
    """Refuse a state-changing request that does not carry the session's CSRF token.

    For ``GET``, ``HEAD``, ``OPTIONS`` and ``TRACE`` it does nothing (they must not change
    state). For every other method the token is read from the ``csrf_token`` form field, or
    the ``X-CSRF-Token`` header, and compared with the session's in constant time.
    Register it with :meth:`flask.Flask.before_request` (``FlaskMFA.init_app`` does).

    Raises:
        werkzeug.exceptions.BadRequest: (HTTP 400) the token is missing, or is not the
            session's, or the session has none.
    """
    if request.method in _SAFE_METHODS:
        return
    expected = session.get(_CSRF_KEY)
    sent = request.form.get(_CSRF_FIELD) or request.headers.get(_CSRF_HEADER)
    if not isinstance(expected, str) or not expected or not sent:
        abort(400, description="The form has expired. Reload the page and try again.")
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(400, description="The form has expired. Reload the page and try again.")


class FlaskMFA:
    """Keeps a :class:`~mfakit.SignInFlow` in the Flask session and guards views with it.

    Args:
        flow: The sign-in flow (its facade's clock times the inactivity timeout).
        load_subject: Returns the :class:`~mfakit.Subject` of the user who passed the
            password in this session, or ``None`` (called inside a request).
        login_endpoint: Where a request without a sign-in goes.
        step_endpoints: For each pending :class:`~mfakit.FlowStep`, the endpoint of its page.
            A step without an endpoint goes to ``login_endpoint``.
        csrf: Register :func:`check_csrf` for every request in :meth:`init_app`.
        on_end: Called with the reason when a guard (or :meth:`end`) ends a session, before
            the session is cleared (to drop a server-side session record, for example):
            ``"idle"`` (inactivity timeout), ``"lifetime"`` (session lifetime),
            ``"expired"`` (the flow token is past its expiry: a pending sign-in left too
            long, or a complete one past the lifetime), ``"invalid"`` (no token, or one
            tampered with or made for another subject or session), or what the host passes
            to :meth:`end`.
        app: Initialise this application at once.
    """

    #: Flashed (category ``"warning"``) when the inactivity timeout ends a session.
    idle_message = "You were signed out after a period of inactivity. Please sign in again."
    #: Flashed when the session lifetime is over or the sign-in can no longer continue.
    expired_message = "Your session has ended. Please sign in again."

    def __init__(
        self,
        flow: SignInFlow,
        *,
        load_subject: Callable[[], Subject | None],
        login_endpoint: str,
        step_endpoints: Mapping[FlowStep, str] | None = None,
        csrf: bool = True,
        on_end: Callable[[str], None] | None = None,
        app: Flask | None = None,
    ) -> None:
        self.flow = flow
        self.load_subject = load_subject
        self.login_endpoint = login_endpoint
        self.step_endpoints: dict[FlowStep, str] = dict(step_endpoints or {})
        self.csrf = csrf
        self.on_end = on_end
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Register the extension, the CSRF check and the ``csrf_token`` template global."""
        app.extensions[_EXTENSION] = self
        app.jinja_env.globals["csrf_token"] = csrf_token
        if self.csrf:
            app.before_request(check_csrf)

    # the flow in the session -------------------------------------------------------------
    def _now(self) -> dt.datetime:
        return self.flow.mfa.clock.now()

    def start(self, subject: Subject) -> FlowState:
        """Begin the flow after the host accepted the password.

        Call it after clearing the session (a new sign-in starts from nothing) and storing
        the host's own user id. A fresh random binding ties the token to this session.

        Returns:
            The first state; :meth:`url_for_state` gives its page.
        """
        binding = secrets.token_urlsafe(32)
        token, state = self.flow.start(subject, binding=binding)
        session[_BINDING_KEY] = binding
        session[_FLOW_KEY] = token
        self.touch()
        return state

    def advance(self, step: Callable[[str, str], tuple[str, T]]) -> T:
        """Run one flow step with this session's token and binding, and keep the new token.

        Example::

            state = glue.advance(lambda token, binding: flow.verify(
                subject, token, code, binding=binding))

        Args:
            step: Called with ``(token, binding)``; returns ``(new_token, result)`` as every
                :class:`~mfakit.SignInFlow` step does.

        Returns:
            The step's result.

        Raises:
            InvalidFlowToken: This session has no sign-in in progress.
            MFAError: Whatever the step raises; the stored token is then unchanged.
        """
        token, binding = session.get(_FLOW_KEY), session.get(_BINDING_KEY)
        if not isinstance(token, str) or not isinstance(binding, str):
            raise InvalidFlowToken("this session has no sign-in in progress")
        new_token, result = step(token, binding)
        session[_FLOW_KEY] = new_token
        return result

    def state(self, subject: Subject) -> FlowState | None:
        """The state of this session's sign-in, or ``None`` when there is none or it was
        refused (expired, tampered, another subject's)."""
        state, _ = self._load(subject)
        return state

    def _load(self, subject: Subject) -> tuple[FlowState | None, str]:
        """The state, or ``None`` and why: ``"expired"`` or ``"invalid"``."""
        token, binding = session.get(_FLOW_KEY), session.get(_BINDING_KEY)
        if not isinstance(token, str) or not isinstance(binding, str):
            return None, "invalid"
        try:
            return self.flow.load(subject, token, binding=binding), ""
        except FlowExpired:
            return None, "expired"
        except FlowError:
            return None, "invalid"

    def touch(self) -> None:
        """Record activity now (the inactivity timeout counts from the last call)."""
        session[_ACTIVITY_KEY] = self._now().isoformat()

    def session_status(self, subject: Subject) -> SessionStatus | None:
        """For a complete sign-in, whether the session is still within its limits.

        Returns:
            The :class:`~mfakit.SessionStatus`, or ``None`` when there is no complete,
            valid sign-in in this session.
        """
        token, binding = session.get(_FLOW_KEY), session.get(_BINDING_KEY)
        raw = session.get(_ACTIVITY_KEY)
        if not isinstance(token, str) or not isinstance(binding, str) or not isinstance(raw, str):
            return None
        try:
            last = dt.datetime.fromisoformat(raw)
            return self.flow.session_status(subject, token, last_activity_at=last, binding=binding)
        except (FlowError, ValueError):
            return None

    def end(self, reason: str = "signed_out") -> None:
        """End the session: call ``on_end`` with ``reason``, then clear the whole session."""
        if self.on_end is not None:
            self.on_end(reason)
        session.clear()

    def url_for_state(self, state: FlowState | None) -> str:
        """The page for a state: the endpoint its step maps to (map
        :attr:`FlowStep.COMPLETE <mfakit.FlowStep.COMPLETE>` to say where a complete
        sign-in lands), or the login page without a state or for an unmapped step."""
        if state is None or state.step not in self.step_endpoints:
            return url_for(self.login_endpoint)
        return url_for(self.step_endpoints[state.step])

    # guards ------------------------------------------------------------------------------
    def _login_redirect(self, reason: str) -> ResponseReturnValue:
        self.end(reason)
        flash(self.idle_message if reason == "idle" else self.expired_message, "warning")
        return redirect(url_for(self.login_endpoint))

    def required(self, view: Callable[P, ResponseReturnValue]) -> View[P]:
        """Decorate a view that needs a complete sign-in (password and second factor).

        * no signed-in user: redirect to the login page;
        * a sign-in still pending (second factor not verified, recovery used and no
          factor enrolled again, recovery PIN not set): redirect to that step's page
          (SECURITY.md 32: the password alone never reaches a protected page);
        * the flow token refused or expired, the session lifetime or the inactivity timeout
          over: the session is ended (``on_end``, then cleared), a message flashed, and the
          request redirected to the login page;
        * otherwise the activity is recorded and the view runs, with ``g.mfakit_subject``
          and ``g.mfakit_state`` set.
        """

        @functools.wraps(view)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
            subject = self.load_subject()
            if subject is None:
                return redirect(url_for(self.login_endpoint))
            state, why = self._load(subject)
            if state is None:
                return self._login_redirect(why)
            if not state.complete:
                return redirect(self.url_for_state(state))
            status = self.session_status(subject)
            if status is None:
                return self._login_redirect("invalid")
            if not status.valid:
                return self._login_redirect(status.reason)
            self.touch()
            g.mfakit_subject, g.mfakit_state = subject, state
            return view(*args, **kwargs)

        return guarded

    def step_required(
        self, *steps: FlowStep
    ) -> Callable[[Callable[P, ResponseReturnValue]], View[P]]:
        """Decorate the page of pending steps: it runs only while the sign-in is at one of
        ``steps``; otherwise the request goes to the page of the step the sign-in is at
        (or the login page). Sets ``g.mfakit_subject`` and ``g.mfakit_state``.

        A complete sign-in that reaches a step page is sent where :meth:`url_for_state`
        says (the endpoint mapped to ``FlowStep.COMPLETE``, else the login page).
        """
        if not steps or not all(isinstance(s, FlowStep) for s in steps):
            raise TypeError("step_required takes one or more FlowStep values")

        def decorate(view: Callable[P, ResponseReturnValue]) -> View[P]:
            @functools.wraps(view)
            def guarded(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
                subject = self.load_subject()
                if subject is None:
                    return redirect(url_for(self.login_endpoint))
                state, why = self._load(subject)
                if state is None:
                    return self._login_redirect(why)
                if state.step not in steps:
                    return redirect(self.url_for_state(state))
                self.touch()
                g.mfakit_subject, g.mfakit_state = subject, state
                return view(*args, **kwargs)

            return guarded

        return decorate


def _extension() -> FlaskMFA:
    glue: Any = current_app.extensions.get(_EXTENSION)
    if not isinstance(glue, FlaskMFA):
        raise RuntimeError("FlaskMFA.init_app(app) has not been called for this application")
    return glue


def mfa_required(view: Callable[P, ResponseReturnValue]) -> View[P]:
    """:meth:`FlaskMFA.required` of the current application's extension, for views
    defined before the extension exists (in a blueprint module, say)."""

    @functools.wraps(view)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
        return _extension().required(view)(*args, **kwargs)

    return guarded


def step_required(*steps: FlowStep) -> Callable[[Callable[P, ResponseReturnValue]], View[P]]:
    """:meth:`FlaskMFA.step_required` of the current application's extension, for views
    defined before the extension exists."""
    if not steps or not all(isinstance(s, FlowStep) for s in steps):
        raise TypeError("step_required takes one or more FlowStep values")

    def decorate(view: Callable[P, ResponseReturnValue]) -> View[P]:
        @functools.wraps(view)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
            return _extension().step_required(*steps)(view)(*args, **kwargs)

        return guarded

    return decorate
