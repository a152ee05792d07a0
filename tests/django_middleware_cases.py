"""The cases of ``test_django_middleware.py``, run in a subprocess of their own.

Django can be configured once per process, and these cases need ``django.contrib.auth``
and sessions, which the in-process configuration of the rest of the suite
(``django_settings.py``) does not install. So ``test_django_middleware.py`` runs this
file with ``python -m pytest`` in a fresh interpreter, where it configures Django at import:
auth, sessions (database backend) and an in-memory SQLite database, this module as the
URLconf, and an :class:`~mfakit.MFA` on a :class:`~mfakit.testing.FakeClock` with the
register's policy (review the details, then an e-mail code; MFA required).

The file name does not match ``test_*.py``, so the suite never collects it directly.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
from typing import Any

import django
import pytest
from django.conf import settings

if not settings.configured:  # pragma: no branch - this process is ours alone
    settings.configure(
        DEBUG=False,
        SECRET_KEY="mfakit-middleware-tests-only",
        ALLOWED_HOSTS=["testserver"],
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "mfakit.contrib.django.middleware.MFARequiredMiddleware",
        ],
        ROOT_URLCONF=__name__,
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        USE_TZ=True,
        LOGIN_URL="/login/",
        MFAKIT_FLOW=f"{__name__}.get_flow",
        MFAKIT_STEP_URL="step",
        MFAKIT_EXEMPT_URL_NAMES=["allowed", "help:*"],
    )
    django.setup()

from django.contrib.auth import authenticate
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory, override_settings
from django.urls import include, path

from mfakit import (
    MFA,
    Keyring,
    Policy,
    SessionLimits,
    SignInFlow,
    Subject,
)
from mfakit.contrib.django.decorators import mfa_exempt, mfa_required
from mfakit.contrib.django.middleware import (
    EXEMPT_ATTRIBUTE,
    MFARequiredMiddleware,
    SessionKeys,
    current_state,
    default_subject,
    get_subject,
    save_step,
    start_sign_in,
)
from mfakit.contrib.django.middleware import (
    get_flow as configured_flow,
)
from mfakit.factors import EmailOTP
from mfakit.storage import MemoryStore
from mfakit.testing import FakeClock, Outbox

PASSWORD = "a password for the tests"
IDLE = dt.timedelta(minutes=5)
LIFETIME = dt.timedelta(hours=1)
CLOCK = FakeClock()
OUTBOX = Outbox()


@functools.cache
def get_flow() -> SignInFlow:
    """``settings.MFAKIT_FLOW``: the register's policy, launched long ago (MFA required)."""
    mfa = MFA(
        store=MemoryStore(),
        keyring=Keyring.ephemeral(),
        factors=[EmailOTP(sender=OUTBOX, from_address="no-reply@test.example", issuer="Test")],
        clock=CLOCK,
        policy=Policy.register(
            launched_at=CLOCK.now() - dt.timedelta(days=200),
            session=SessionLimits(LIFETIME, IDLE),
        ),
    )
    return SignInFlow(mfa)


def not_a_flow() -> object:
    return object()


def not_a_subject(user: AbstractBaseUser) -> object:
    return user.get_username()


# --- the views --------------------------------------------------------------------------------
@mfa_exempt
def login_view(request: HttpRequest) -> HttpResponse:
    user = authenticate(
        request, username=request.POST.get("username"), password=request.POST.get("password")
    )
    if user is None:
        return HttpResponse("refused", status=401)
    return HttpResponse(start_sign_in(request, user).step.value)


@mfa_exempt
def step_view(request: HttpRequest) -> HttpResponse:
    """The MFA step page: advances the flow (``action``) and says where it stands."""
    state = current_state(request)
    if state is None:
        return HttpResponse("none")
    user = request.user
    assert isinstance(user, AbstractBaseUser)
    subject = get_subject(user)
    flow, binding = get_flow(), str(request.session[SessionKeys.BINDING])
    token = str(request.session[SessionKeys.FLOW])
    if request.method == "POST" and request.POST.get("action") == "review":
        token, state = flow.review_done(subject, token, binding=binding)
        token, _ = flow.challenge(subject, token, "email", binding=binding)
        save_step(request, token, state)
    elif request.method == "POST" and request.POST.get("action") == "verify":
        code = OUTBOX.last_code(str(subject.email))
        token, state = flow.verify(subject, token, code, binding=binding)
        save_step(request, token, state)
    return HttpResponse(state.step.value)


def protected_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("protected")


def allowed_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("allowed by name")


@mfa_exempt
def exempt_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("exempt by decorator")


def help_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("help")


@mfa_required
def decorated_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("decorated")


urlpatterns = [
    path("login/", login_view, name="login"),
    path("step/", step_view, name="step"),
    path("protected/", protected_view, name="protected"),
    path("allowed/", allowed_view, name="allowed"),
    path("exempt/", exempt_view, name="exempt"),
    path("decorated/", decorated_view, name="decorated"),
    path("help/", include(([path("page/", help_view, name="page")], "help"))),
]

WITHOUT_MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]


# --- fixtures and steps ---------------------------------------------------------------------------
@pytest.fixture(scope="session", autouse=True)
def database() -> None:
    call_command("migrate", verbosity=0, interactive=False)


_numbers = itertools.count(1)


@pytest.fixture
def user() -> AbstractBaseUser:
    number = next(_numbers)
    made: AbstractBaseUser = User.objects.create_user(
        username=f"user{number}",
        email=f"user{number}@example.com",
        password=PASSWORD,
        first_name="Ada",
        last_name=f"Number{number}",
    )
    return made


@pytest.fixture
def client() -> Client:
    return Client()


def password(client: Client, user: AbstractBaseUser) -> None:
    response = client.post("/login/", {"username": user.get_username(), "password": PASSWORD})
    assert response.content == b"review"


def complete(client: Client, user: AbstractBaseUser) -> None:
    password(client, user)
    assert client.post("/step/", {"action": "review"}).content == b"challenge"
    assert client.post("/step/", {"action": "verify"}).content == b"complete"


def ended(client: Client, response: Any, reason: str) -> None:
    """The user was signed out and sent to the login page, with ``reason`` kept."""
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert "_auth_user_id" not in client.session
    assert SessionKeys.FLOW not in client.session
    assert client.session[SessionKeys.ENDED] == reason


# --- the middleware -----------------------------------------------------------------------------
def test_anonymous_requests_are_left_to_the_view(client: Client) -> None:
    assert client.get("/protected/").content == b"protected"


def test_password_alone_is_sent_to_the_step_page(client: Client, user: AbstractBaseUser) -> None:
    password(client, user)
    response = client.get("/protected/?tab=2")
    assert response.status_code == 302
    assert response["Location"] == "/step/?next=%2Fprotected%2F%3Ftab%3D2"
    # Still pending after the review: the e-mail code is not entered yet.
    client.post("/step/", {"action": "review"})
    assert client.get("/protected/").status_code == 302
    assert client.get("/decorated/").status_code == 302


def test_a_pending_post_is_redirected_without_next(client: Client, user: AbstractBaseUser) -> None:
    password(client, user)
    response = client.post("/protected/", {"x": "1"})
    assert (response.status_code, response["Location"]) == (302, "/step/")


def test_exempt_views_stay_reachable_while_pending(client: Client, user: AbstractBaseUser) -> None:
    password(client, user)
    assert client.get("/allowed/").content == b"allowed by name"  # MFAKIT_EXEMPT_URL_NAMES
    assert client.get("/exempt/").content == b"exempt by decorator"  # @mfa_exempt
    assert client.get("/help/page/").content == b"help"  # "help:*"
    assert client.get("/step/").content == b"review"  # the step page itself
    with override_settings(MFAKIT_EXEMPT_URL_NAMES=[]):
        assert client.get("/allowed/").status_code == 302
        assert client.get("/help/page/").status_code == 302
        assert client.get("/step/").status_code == 200  # always reachable


def test_a_complete_sign_in_passes_with_a_new_session_id(
    client: Client, user: AbstractBaseUser
) -> None:
    password(client, user)
    client.post("/step/", {"action": "review"})
    pending_key = client.session.session_key
    client.post("/step/", {"action": "verify"})
    assert client.session.session_key != pending_key  # SECURITY.md 32
    assert client.get("/protected/").content == b"protected"
    assert client.get("/decorated/").content == b"decorated"


def test_activity_keeps_the_session_and_idleness_ends_it(
    client: Client, user: AbstractBaseUser
) -> None:
    complete(client, user)
    for _ in range(3):  # 12 minutes, never 5 quiet ones
        CLOCK.advance(minutes=4)
        assert client.get("/protected/").status_code == 200
    CLOCK.advance(IDLE)
    ended(client, client.get("/protected/?x=1"), "idle")
    assert client.get("/protected/").content == b"protected"  # now anonymous


def test_an_exempt_view_does_not_escape_the_idle_timeout(
    client: Client, user: AbstractBaseUser
) -> None:
    complete(client, user)
    CLOCK.advance(IDLE + dt.timedelta(seconds=1))
    ended(client, client.get("/allowed/"), "idle")


def test_the_session_lifetime_ends_an_active_session(
    client: Client, user: AbstractBaseUser
) -> None:
    complete(client, user)
    for _ in range(14):  # active every four minutes, for 56 minutes
        CLOCK.advance(minutes=4)
        assert client.get("/protected/").status_code == 200
    CLOCK.advance(minutes=4)  # one hour after the code: the token's lifetime is over
    ended(client, client.get("/protected/"), "expired")


def test_a_pending_sign_in_expires(client: Client, user: AbstractBaseUser) -> None:
    password(client, user)
    CLOCK.advance(minutes=10)  # SignInFlow's pending_ttl
    ended(client, client.get("/exempt/"), "expired")


def test_a_tampered_token_signs_the_user_out(client: Client, user: AbstractBaseUser) -> None:
    complete(client, user)
    session = client.session
    token = str(session[SessionKeys.FLOW])
    session[SessionKeys.FLOW] = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    session.save()
    ended(client, client.get("/protected/"), "invalid")


def test_a_token_copied_into_another_session_is_refused(user: AbstractBaseUser) -> None:
    first, second = Client(), Client()
    complete(first, user)
    password(second, user)
    session = second.session
    session[SessionKeys.FLOW] = first.session[SessionKeys.FLOW]  # the complete token
    session.save()
    ended(second, second.get("/protected/"), "invalid")  # bound to the first session
    assert first.get("/protected/").status_code == 200


def test_a_login_that_skipped_the_flow_is_signed_out(
    client: Client, user: AbstractBaseUser
) -> None:
    client.force_login(user)  # a second login view that forgot mfakit
    ended(client, client.get("/protected/"), "invalid")


def test_a_new_sign_in_starts_afresh_and_rotates_again(
    client: Client, user: AbstractBaseUser
) -> None:
    complete(client, user)
    assert SessionKeys.ACTIVITY in client.session
    password(client, user)  # the same user signs in again in the same session
    assert SessionKeys.ACTIVITY not in client.session
    assert client.get("/protected/").status_code == 302
    client.post("/step/", {"action": "review"})
    pending_key = client.session.session_key
    client.post("/step/", {"action": "verify"})
    assert client.session.session_key != pending_key
    assert client.get("/protected/").status_code == 200


# --- the decorators -----------------------------------------------------------------------------
@override_settings(MIDDLEWARE=WITHOUT_MIDDLEWARE)
def test_mfa_required_guards_a_view_without_the_middleware(
    client: Client, user: AbstractBaseUser
) -> None:
    response = client.get("/decorated/")
    assert (response.status_code, response["Location"]) == (302, "/login/?next=/decorated/")
    password(client, user)
    assert client.get("/protected/").content == b"protected"  # no middleware: unguarded
    response = client.get("/decorated/")
    assert (response.status_code, response["Location"]) == (302, "/step/?next=%2Fdecorated%2F")
    client.post("/step/", {"action": "review"})
    client.post("/step/", {"action": "verify"})
    assert client.get("/decorated/").content == b"decorated"
    CLOCK.advance(IDLE)
    ended(client, client.get("/decorated/"), "idle")


def test_mfa_exempt_marks_the_view_itself() -> None:
    def view(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    assert mfa_exempt(view) is view
    assert getattr(view, EXEMPT_ATTRIBUTE) is True
    assert not hasattr(protected_view, EXEMPT_ATTRIBUTE)


# --- helpers and configuration ---------------------------------------------------------------
def test_current_state_follows_the_sign_in(client: Client, user: AbstractBaseUser) -> None:
    request = RequestFactory().get("/")
    request.user = user
    request.session = client.session
    assert current_state(request) is None  # no token
    password(client, user)
    request.session = client.session
    state = current_state(request)
    assert state is not None
    assert (state.subject_id, state.step.value) == (str(user.pk), "review")


def test_default_subject_maps_the_user(user: AbstractBaseUser) -> None:
    subject = default_subject(user)
    assert subject == Subject(
        id=str(user.pk),
        username=user.get_username(),
        email=f"{user.get_username()}@example.com",
        display_name=f"Ada Number{user.get_username().removeprefix('user')}",
    )
    with (
        override_settings(MFAKIT_SUBJECT=f"{__name__}.not_a_subject"),
        pytest.raises(ImproperlyConfigured),
    ):
        get_subject(user)


@pytest.mark.parametrize(
    "overrides",
    [
        {"MFAKIT_FLOW": None},
        {"MFAKIT_FLOW": f"{__name__}.not_a_flow"},
    ],
)
def test_a_missing_or_wrong_flow_setting_is_a_configuration_error(
    overrides: dict[str, Any],
) -> None:
    with override_settings(**overrides), pytest.raises(ImproperlyConfigured):
        configured_flow()


def test_the_allow_list_must_be_a_list(client: Client, user: AbstractBaseUser) -> None:
    password(client, user)
    with override_settings(MFAKIT_EXEMPT_URL_NAMES="allowed"), pytest.raises(ImproperlyConfigured):
        client.get("/allowed/")


def test_the_middleware_needs_sessions_and_auth_before_it() -> None:
    middleware = MFARequiredMiddleware(lambda request: HttpResponse())
    with pytest.raises(ImproperlyConfigured):
        middleware.process_view(RequestFactory().get("/"), protected_view, (), {})


@pytest.fixture(autouse=True)
def _fresh_outbox() -> None:
    OUTBOX.clear()
