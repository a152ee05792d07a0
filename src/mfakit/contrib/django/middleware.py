"""Django glue for :class:`~mfakit.SignInFlow`: the session keys, the sign-in helpers, and
the middleware that keeps a half-signed-in user out of protected views.

The design follows Django's own authentication: the password view calls
:func:`django.contrib.auth.login` (through :func:`start_sign_in`), so ``request.user`` is
the user from then on. What Django cannot know is whether the *second* step is done; that
is the flow token kept in the session. :class:`MFARequiredMiddleware` reads it on every
request and

* lets anonymous requests through untouched (``login_required`` decides about those);
* sends a signed-in user whose sign-in is still pending (review, challenge, enrolment) to
  the MFA step page, unless the view is exempt (:data:`EXEMPT_ATTRIBUTE`, the
  ``MFAKIT_EXEMPT_URL_NAMES`` allow-list, the login and the step pages themselves):
  SECURITY.md 32, "framework guards refuse a session that passed the password but not the
  second factor";
* signs out a session whose token is missing, forged, bound to another session or
  expired, and one idle or older than the policy's :class:`~mfakit.SessionLimits`
  (SECURITY.md 34; NIST SP 800-63B 7.1, ISM-0428), then redirects to ``LOGIN_URL``.

Settings (all read at request time, so ``override_settings`` works):

``MFAKIT_FLOW`` (required)
    Dotted path of a callable with no arguments that returns the :class:`~mfakit.SignInFlow`
    (the host builds its :class:`~mfakit.MFA` once and caches it).
``MFAKIT_SUBJECT``
    Dotted path of a callable ``(user) -> Subject``; by default :func:`default_subject`.
``MFAKIT_STEP_URL``
    URL name or path of the view that shows the pending step; default ``"mfakit-step"``.
``MFAKIT_EXEMPT_URL_NAMES``
    URL names a pending user may still reach (``"name"``, ``"namespace:name"`` or
    ``"namespace:*"``), such as the logout view and the steps' own pages.

Middleware order: after ``SessionMiddleware`` and ``AuthenticationMiddleware``.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import REDIRECT_FIELD_NAME, login, logout
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.utils.module_loading import import_string

from mfakit import FlowError, FlowExpired, FlowState, SignInFlow, Subject

if TYPE_CHECKING:
    # Importing a model base class needs a configured project; this module must not, so
    # that it can be imported (and its names checked) before django.setup().
    from django.contrib.auth.base_user import AbstractBaseUser

__all__ = [
    "MFARequiredMiddleware",
    "SessionKeys",
    "check_request",
    "current_state",
    "default_subject",
    "end_sign_in",
    "get_flow",
    "get_subject",
    "save_step",
    "start_sign_in",
]

#: A view with this attribute set to ``True`` is reachable while the sign-in is pending
#: (set by :func:`~mfakit.contrib.django.decorators.mfa_exempt`).
EXEMPT_ATTRIBUTE: Final = "mfakit_exempt"


class SessionKeys:
    """The keys this module keeps in ``request.session`` (all prefixed ``mfakit.``).

    Attributes:
        FLOW: The flow token (``mfa1.…``): identifiers and times only, signed
            (SECURITY.md 31).
        BINDING: A random value tying the token to this session; the token stores only
            its keyed hash.
        ACTIVITY: Time of the last request of a complete sign-in (ISO 8601, on the
            facade's clock).
        ENDED: Why the previous session was ended (``"idle"``, ``"lifetime"``,
            ``"expired"``, ``"invalid"``), left in the fresh session for the login page.
    """

    FLOW: Final = "mfakit.flow"
    BINDING: Final = "mfakit.binding"
    ACTIVITY: Final = "mfakit.activity"
    ENDED: Final = "mfakit.ended"


_DEFAULT_STEP_URL: Final = "mfakit-step"


def get_flow() -> SignInFlow:
    """The host's :class:`~mfakit.SignInFlow`, from ``settings.MFAKIT_FLOW``.

    Raises:
        ImproperlyConfigured: The setting is missing or does not give a ``SignInFlow``.
    """
    path = getattr(settings, "MFAKIT_FLOW", None)
    if not isinstance(path, str) or not path:
        raise ImproperlyConfigured("set MFAKIT_FLOW to the dotted path of a SignInFlow factory")
    flow = import_string(path)()
    if not isinstance(flow, SignInFlow):
        raise ImproperlyConfigured(f"MFAKIT_FLOW ({path}) did not return a SignInFlow")
    return flow


def default_subject(user: AbstractBaseUser) -> Subject:
    """A :class:`~mfakit.Subject` from a Django user: id = primary key, plus the username,
    the e-mail address (where the register sends codes) and the full name, when the user
    model has them. Hosts with tenants or policy attributes set ``MFAKIT_SUBJECT``."""
    username = user.get_username()
    full_name = getattr(user, "get_full_name", lambda: "")()
    email = getattr(user, getattr(user, "EMAIL_FIELD", "email"), "") or None
    return Subject(
        id=str(user.pk),
        username=username or None,
        email=email,
        display_name=full_name or username or None,
    )


def get_subject(user: AbstractBaseUser) -> Subject:
    """The subject for ``user``, through ``settings.MFAKIT_SUBJECT`` if set."""
    path = getattr(settings, "MFAKIT_SUBJECT", None)
    factory: Callable[[AbstractBaseUser], Subject] = (
        import_string(path) if path else default_subject
    )
    subject = factory(user)
    if not isinstance(subject, Subject):
        raise ImproperlyConfigured("MFAKIT_SUBJECT must return a mfakit.Subject")
    return subject


def _now(flow: SignInFlow) -> dt.datetime:
    return flow.mfa.clock.now()


def start_sign_in(request: HttpRequest, user: AbstractBaseUser) -> FlowState:
    """Call after the password was accepted: log the user in and start the flow.

    :func:`django.contrib.auth.login` rotates the session id; a fresh random binding
    ties the flow token to this session, so a token copied into another session is
    refused (SECURITY.md 31).

    Returns:
        The flow's first state (``REVIEW``, ``CHALLENGE``, ..., or ``COMPLETE`` when the
        policy asks for nothing more).
    """
    flow = get_flow()
    subject = get_subject(user)
    # A new sign-in never inherits the previous one's state (login() keeps the session's
    # data when the same user signs in again).
    for key in (SessionKeys.FLOW, SessionKeys.BINDING, SessionKeys.ACTIVITY, SessionKeys.ENDED):
        request.session.pop(key, None)
    login(request, user)
    binding = secrets.token_urlsafe(32)
    token, state = flow.start(subject, binding=binding)
    request.session[SessionKeys.BINDING] = binding
    save_step(request, token, state)
    return state


def save_step(request: HttpRequest, token: str, state: FlowState) -> None:
    """Keep the token a flow step returned. When the sign-in becomes complete, rotate the
    session id (SECURITY.md 32: the pre-MFA session id is never the signed-in one) and
    start counting activity for the idle timeout."""
    was_complete = SessionKeys.ACTIVITY in request.session
    request.session[SessionKeys.FLOW] = token
    if not state.complete:
        # Pending again (the host restarted the flow, for example to opt in): the next
        # completion is a new privilege level and gets a new session id too.
        request.session.pop(SessionKeys.ACTIVITY, None)
    elif not was_complete:
        request.session.cycle_key()
        request.session[SessionKeys.ACTIVITY] = _now(get_flow()).isoformat()


def _signed_in(request: HttpRequest) -> AbstractBaseUser | None:
    """The request's user if signed in (with the password at least), else ``None``."""
    from django.contrib.auth.base_user import AbstractBaseUser

    user = request.user
    if isinstance(user, AbstractBaseUser) and user.is_authenticated:
        return user
    return None


def _binding(request: HttpRequest) -> str:
    value = request.session.get(SessionKeys.BINDING)
    return value if isinstance(value, str) else ""


def current_state(request: HttpRequest) -> FlowState | None:
    """The checked flow state of this request's sign-in, or ``None`` (anonymous user, no
    token, or a token refused for any reason: tampered, foreign, expired)."""
    user = _signed_in(request)
    token = request.session.get(SessionKeys.FLOW)
    if user is None or not isinstance(token, str):
        return None
    try:
        return get_flow().load(get_subject(user), token, binding=_binding(request))
    except FlowError:
        return None


def end_sign_in(request: HttpRequest, reason: str | None = None) -> None:
    """Log out (flushing the session and its flow token), and remember ``reason`` in the
    fresh session for the login page."""
    logout(request)
    if reason is not None:
        request.session[SessionKeys.ENDED] = reason


def _to_login(request: HttpRequest, reason: str) -> HttpResponseRedirect:
    end_sign_in(request, reason)
    return HttpResponseRedirect(_with_next(resolve_url(settings.LOGIN_URL), request))


def _with_next(url: str, request: HttpRequest) -> str:
    # Only a GET can be replayed after the step; the target page checks the value
    # with url_has_allowed_host_and_scheme before following it.
    if request.method not in ("GET", "HEAD"):
        return url
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}{urlencode({REDIRECT_FIELD_NAME: request.get_full_path()})}"


def _parse_time(value: object) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def check_request(request: HttpRequest, *, exempt: bool = False) -> HttpResponseBase | None:
    """The guard of :class:`MFARequiredMiddleware` and
    :func:`~mfakit.contrib.django.decorators.mfa_required`.

    Args:
        request: A request that went through the session and authentication middleware.
        exempt: The view may be shown while the sign-in is pending (the session is still
            checked and signed out if invalid, idle or too old).

    Returns:
        ``None`` to let the request through, or the redirect to send instead: to the MFA
        step page for a pending sign-in, to ``LOGIN_URL`` after signing the user out.
    """
    user = _signed_in(request)
    if user is None:
        return None
    token = request.session.get(SessionKeys.FLOW)
    if not isinstance(token, str):
        # Signed in by some other path (a second login view, force_login): never let a
        # session without the flow's word count as verified (SECURITY.md 32).
        return _to_login(request, "invalid")
    flow = get_flow()
    subject = get_subject(user)
    binding = _binding(request)
    try:
        state = flow.load(subject, token, binding=binding)
    except FlowExpired:
        return _to_login(request, "expired")
    except FlowError:
        return _to_login(request, "invalid")
    if not state.complete:
        if exempt:
            return None
        return HttpResponseRedirect(_with_next(resolve_url(_step_url()), request))
    last = _parse_time(request.session.get(SessionKeys.ACTIVITY))
    status = flow.session_status(
        subject,
        token,
        last_activity_at=last or state.mfa_at or state.started_at,
        binding=binding,
    )
    if not status.valid:
        return _to_login(request, status.reason)
    request.session[SessionKeys.ACTIVITY] = _now(flow).isoformat()
    return None


def _step_url() -> str:
    value = getattr(settings, "MFAKIT_STEP_URL", _DEFAULT_STEP_URL)
    return str(value)


def _exempt_names() -> frozenset[str]:
    names: Iterable[str] = getattr(settings, "MFAKIT_EXEMPT_URL_NAMES", ())
    if isinstance(names, str):
        raise ImproperlyConfigured("MFAKIT_EXEMPT_URL_NAMES must be a list of URL names")
    return frozenset(names)


def _is_exempt(request: HttpRequest, view_func: Callable[..., Any]) -> bool:
    if getattr(view_func, EXEMPT_ATTRIBUTE, False) is True:
        return True
    match = request.resolver_match
    names = _exempt_names()
    if match is not None and match.url_name is not None:
        if match.view_name in names:
            return True
        if any(f"{namespace}:*" in names for namespace in _namespaces(match.namespace)):
            return True
    # The login page and the step page are always reachable, whatever the allow-list says.
    own = {resolve_url(settings.LOGIN_URL), resolve_url(_step_url())}
    return request.path in own


def _namespaces(namespace: str) -> list[str]:
    """``"a:b"`` -> ``["a", "a:b"]``: a wildcard on an outer namespace covers inner ones."""
    parts = namespace.split(":") if namespace else []
    return [":".join(parts[: i + 1]) for i in range(len(parts))]


class MFARequiredMiddleware:
    """Refuse protected views to a user whose sign-in is not complete; end idle sessions.

    Add ``"mfakit.contrib.django.middleware.MFARequiredMiddleware"`` to ``MIDDLEWARE``
    after ``AuthenticationMiddleware``. Every view is protected unless exempt; anonymous
    requests are left to Django's ``login_required``.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponseBase | None:
        """Run the guard once the URL is resolved, so the view's exemption is known."""
        if not hasattr(request, "user") or not hasattr(request, "session"):
            raise ImproperlyConfigured(
                "MFARequiredMiddleware needs SessionMiddleware and AuthenticationMiddleware "
                "before it"
            )
        return check_request(request, exempt=_is_exempt(request, view_func))
