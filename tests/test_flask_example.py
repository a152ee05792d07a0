"""The Flask example (``examples/flask_app``) through Flask's test client: configuration,
development-only pieces, cookies and headers, and session revocation. The browser tests
(``tests/e2e/test_flask_browser.py``) drive the pages themselves."""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from e2e.conftest import load_example
from mfakit.hazmat.hashing import SecretHasher
from mfakit.testing import FakeClock, Outbox, totp_now

PASSWORD = "correct horse battery"
PRODUCTION = {
    "SECRET_KEY": "s" * 64,
    "MFAKIT_KEYS": "k1:" + "A" * 43,
    "SMS_SENDER": Outbox(),
}


def make(tmp_path: Path, **config: Any) -> Any:
    base = {"INSTANCE_PATH": tmp_path / "instance", "HASHER": SecretHasher.owasp_minimum()}
    return load_example().create_app({**base, **config})


def csrf(client: FlaskClient, path: str = "/login") -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found is not None
    return found.group(1)


def sign_up(client: FlaskClient, username: str) -> None:
    response = client.post(
        "/signup",
        data={
            "csrf_token": csrf(client),
            "username": username,
            "password": PASSWORD,
            "password2": PASSWORD,
        },
    )
    assert response.location == "/mfa/choose"


def enrol_app(app: Any, client: FlaskClient, clock: FakeClock | None = None) -> str:
    """Enrol an authenticator app and a PIN; returns the base32 key."""
    token = csrf(client, "/mfa/choose")
    page = client.post("/mfa/app", data={"csrf_token": token}).text
    found = re.search(r'id="manual-key">([A-Z2-7 ]+)<', page)
    assert found is not None
    secret = found.group(1).replace(" ", "")
    now = (clock or app.extensions["flask_app"].mfa.clock).now()
    response = client.post(
        "/mfa/app/confirm", data={"csrf_token": token, "code": totp_now(secret, now)}
    )
    assert response.location == "/mfa/pin"
    response = client.post(
        "/mfa/pin", data={"csrf_token": token, "pin": "480213", "pin2": "480213"}
    )
    assert response.location == "/"
    return secret


def test_outside_development_secrets_and_a_sender_are_required(tmp_path: Path) -> None:
    for missing in PRODUCTION:
        config = {k: v for k, v in PRODUCTION.items() if k != missing}
        with pytest.raises(RuntimeError, match=missing):
            make(tmp_path, DEVELOPMENT=False, **config)
    assert not (tmp_path / "instance" / "secret_key").exists()  # nothing generated


def test_development_generates_secrets_once_owner_only(tmp_path: Path) -> None:
    first = make(tmp_path, DEVELOPMENT=True)
    second = make(tmp_path, DEVELOPMENT=True)
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"]
    for name in ("secret_key", "mfakit_keys"):
        path = tmp_path / "instance" / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (tmp_path / "instance" / "flask_app.db").exists()  # SQLite in the instance folder


def test_dev_outbox_only_in_development(tmp_path: Path) -> None:
    dev = make(tmp_path / "dev", DEVELOPMENT=True).test_client()
    assert dev.get("/dev/outbox").status_code == 200
    prod = make(tmp_path / "prod", DEVELOPMENT=False, **PRODUCTION).test_client()
    assert prod.get("/dev/outbox").status_code == 404


def test_outbox_shows_the_texts_sent(tmp_path: Path) -> None:
    app = make(tmp_path, DEVELOPMENT=True)
    client = app.test_client()
    sign_up(client, "tom")
    token = csrf(client, "/mfa/sms")
    response = client.post(
        "/mfa/sms", data={"csrf_token": token, "country": "NZ", "number": "021 123 4567"}
    )
    assert response.location == "/mfa/sms/confirm"
    outbox = app.extensions["flask_app"].outbox
    code = outbox.last_code("+64211234567")
    page = client.get("/dev/outbox").text
    assert "+64211234567" in page
    assert code in page


def test_cookie_flags_and_headers(tmp_path: Path) -> None:
    prod = make(tmp_path, DEVELOPMENT=False, **PRODUCTION).test_client()
    response = prod.get("/login")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-session=")
    for flag in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert flag in cookie
    assert "Domain" not in cookie
    assert response.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]

    dev = make(tmp_path / "dev", DEVELOPMENT=True).test_client()
    cookie = dev.get("/login").headers["Set-Cookie"]
    assert cookie.startswith("session=")
    assert "Secure" not in cookie
    assert "HttpOnly" in cookie


def test_first_account_is_admin_only_in_development(tmp_path: Path) -> None:
    for development, config in ((True, {}), (False, PRODUCTION)):
        app = make(tmp_path / str(development), DEVELOPMENT=development, **config)
        client = app.test_client()
        sign_up(client, "first")
        sign_up(app.test_client(), "second")
        users = {u.username: u.is_admin for u in app.extensions["flask_app"].accounts.all()}
        assert users == {"first": development, "second": False}


def test_signing_out_kills_a_copied_cookie(tmp_path: Path) -> None:
    app = make(tmp_path, DEVELOPMENT=True)
    client = app.test_client()
    sign_up(client, "alice")
    enrol_app(app, client)
    copied = client.get_cookie("session")
    assert copied is not None
    assert client.get("/").status_code == 200

    client.post("/logout", data={"csrf_token": csrf(client, "/")})
    thief = app.test_client()
    thief.set_cookie("session", copied.value)
    assert thief.get("/").location == "/login"


def test_session_id_rotates_after_the_second_factor(tmp_path: Path) -> None:
    app = make(tmp_path, DEVELOPMENT=True)
    client = app.test_client()
    sign_up(client, "alice")
    before = client.get_cookie("session")
    assert before is not None
    enrol_app(app, client)
    stale = app.test_client()  # the cookie of the password step, before MFA
    stale.set_cookie("session", before.value)
    assert stale.get("/mfa/choose").location == "/login"
    assert client.get("/").status_code == 200


def test_idle_timeout_with_an_injected_clock(tmp_path: Path) -> None:
    clock = FakeClock()
    app = make(tmp_path, DEVELOPMENT=True, CLOCK=clock, IDLE_TIMEOUT=60)
    client = app.test_client()
    sign_up(client, "alice")
    enrol_app(app, client, clock)
    clock.advance(seconds=59)
    assert client.get("/").status_code == 200
    clock.advance(seconds=60)
    response = client.get("/", follow_redirects=True)
    assert response.request.path == "/login"
    assert "signed out after a period of inactivity" in response.text


def test_non_admin_gets_403(tmp_path: Path) -> None:
    app = make(tmp_path, DEVELOPMENT=False, **PRODUCTION)
    client = app.test_client()
    client.environ_base["wsgi.url_scheme"] = "https"  # the Secure cookie needs HTTPS
    sign_up(client, "bob")
    enrol_app(app, client)
    assert client.get("/admin/").status_code == 403
    response = client.post("/admin/users/1/reset", data={"csrf_token": csrf(client, "/")})
    assert response.status_code == 403
