"""A small Flask application with the practice suite's sign-in, built on mfakit.

Run it (development mode, SQLite in the instance folder)::

    sh scripts/demo.sh
    # or: flask --app examples/flask_app run --debug

:func:`create_app` takes a mapping of settings (tests pass their own); everything else comes
from the environment:

======================  =====================================================================
setting                 meaning (default)
======================  =====================================================================
``DEVELOPMENT``         Development mode: generated secrets in the instance folder, the SMS
                        outbox page at ``/dev/outbox``, cookies without ``Secure``.
                        (``app.debug``, i.e. ``flask run --debug``)
``SECRET_KEY``          Signs the session cookie (env ``SECRET_KEY``; required outside
                        development).
``MFAKIT_KEYS``         mfakit's keyring (env ``MFAKIT_KEYS``; required outside development).
``DATABASE_URL``        Users, sessions and mfakit's tables (env ``DATABASE_URL``;
                        ``sqlite:///<instance>/flask_app.db``).
``INSTANCE_PATH``       The instance folder (Flask's default, ``examples/instance``).
``SMS_SENDER``          An :class:`~mfakit.typing.SMSSender` (required outside development;
                        in development an :class:`~mfakit.testing.Outbox`).
``IDLE_TIMEOUT``        Inactivity timeout (15 minutes), a ``timedelta`` or seconds.
``SESSION_LIFETIME``    Session lifetime (24 hours).
``SMS_RESEND_COOLDOWN`` Wait before "Resend" works (30 seconds).
``SMS_CODE_TTL``        Lifetime of an SMS code (5 minutes).
``HASHER``              argon2id parameters for passwords and PINs (mfakit's default).
``TENANT``              The practice every user belongs to (``"demo-practice"``).
``ISSUER``              Name in authenticator apps and texts (``"Practice Suite"``).
``CLOCK``               mfakit's time source, for tests (the system clock: phones use real
                        time).
======================  =====================================================================
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from flask import Flask, Response

from mfakit import MFA, FlowStep, Keyring, SignInFlow
from mfakit.contrib.flask import FlaskMFA
from mfakit.hazmat.hashing import SecretHasher
from mfakit.storage.sql import SQLStore
from mfakit.testing import Outbox
from mfakit.typing import SMSSender

from .practice import COUNTRIES, practice_suite_mfa
from .users import Accounts

__all__ = ["Services", "create_app"]


@dataclasses.dataclass(frozen=True)
class Services:
    """What the views use, kept in ``app.extensions["flask_app"]``."""

    mfa: MFA
    flow: SignInFlow
    glue: FlaskMFA
    accounts: Accounts
    store: SQLStore
    outbox: Outbox | None
    tenant: str
    development: bool


def _duration(value: Any, name: str) -> dt.timedelta:
    if isinstance(value, dt.timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return dt.timedelta(seconds=value)
    raise RuntimeError(f"{name} must be a timedelta or a positive number of seconds")


def _secret(app: Flask, name: str, development: bool, make: Any) -> str:
    """A setting from the config, else the environment, else (development only) a value
    generated once into the instance folder, readable by the owner only."""
    value = app.config.get(name) or os.environ.get(name)
    if value:
        return str(value)
    if not development:
        raise RuntimeError(f"set {name} in the environment (it is generated only in development)")
    path = Path(app.instance_path) / name.lower()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(make() + "\n")
    return path.read_text().strip()


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the application.

    Args:
        config: Settings (see the module docstring) applied over the defaults.

    Raises:
        RuntimeError: Outside development mode, ``SECRET_KEY``, ``MFAKIT_KEYS`` or
            ``SMS_SENDER`` is missing.
    """
    settings = dict(config or {})
    instance_path = settings.pop("INSTANCE_PATH", None)
    app = Flask(__name__, instance_path=None if instance_path is None else str(instance_path))
    app.config.update(
        IDLE_TIMEOUT=dt.timedelta(minutes=15),
        SESSION_LIFETIME=dt.timedelta(hours=24),
        SMS_RESEND_COOLDOWN=dt.timedelta(seconds=30),
        SMS_CODE_TTL=dt.timedelta(minutes=5),
        TENANT="demo-practice",
        ISSUER="Practice Suite",
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    app.config.update(settings)
    development = bool(app.config.get("DEVELOPMENT", app.debug))
    app.config["DEVELOPMENT"] = development

    app.config["SECRET_KEY"] = _secret(app, "SECRET_KEY", development, lambda: os.urandom(32).hex())
    keyring = Keyring.from_string(_secret(app, "MFAKIT_KEYS", development, Keyring.generate_key))
    lifetime = _duration(app.config["SESSION_LIFETIME"], "SESSION_LIFETIME")
    app.config.update(
        # The cookie: never readable by scripts, not sent on cross-site subrequests, only
        # over HTTPS outside development; "__Host-" pins it to this host and path.
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=not development,
        SESSION_COOKIE_NAME="session" if development else "__Host-session",
        PERMANENT_SESSION_LIFETIME=lifetime,
    )

    outbox: Outbox | None = None
    sender: SMSSender | None = app.config.get("SMS_SENDER")
    if sender is None:
        if not development:
            raise RuntimeError("set SMS_SENDER to your provider's sender outside development")
        outbox = Outbox()  # read at /dev/outbox
        sender = outbox
    elif isinstance(sender, Outbox):
        outbox = sender

    url = app.config.get("DATABASE_URL") or os.environ.get("DATABASE_URL")
    if not url:
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{Path(app.instance_path) / 'flask_app.db'}"
    store = SQLStore(url, create=True)
    hasher: SecretHasher = app.config.get("HASHER") or SecretHasher()
    mfa = practice_suite_mfa(
        store=store,
        keyring=keyring,
        sms_sender=sender,
        issuer=app.config["ISSUER"],
        session_lifetime=lifetime,
        idle_timeout=_duration(app.config["IDLE_TIMEOUT"], "IDLE_TIMEOUT"),
        resend_cooldown=_duration(app.config["SMS_RESEND_COOLDOWN"], "SMS_RESEND_COOLDOWN"),
        code_ttl=_duration(app.config["SMS_CODE_TTL"], "SMS_CODE_TTL"),
        hasher=hasher,
        clock=app.config.get("CLOCK"),
    )
    flow = SignInFlow(mfa)

    from . import views

    glue = FlaskMFA(
        flow,
        load_subject=views.current_subject,
        login_endpoint="auth.login",
        step_endpoints={
            FlowStep.ENROLL: "mfa.choose",
            FlowStep.ENROLL_RECOVERY: "mfa.pin",
            FlowStep.CHALLENGE: "mfa.verify",
            FlowStep.COMPLETE: "main.home",
        },
        on_end=views.end_server_session,
    )
    glue.init_app(app)
    app.extensions["flask_app"] = Services(
        mfa=mfa,
        flow=flow,
        glue=glue,
        accounts=Accounts(store.engine, hasher),
        store=store,
        outbox=outbox,
        tenant=app.config["TENANT"],
        development=development,
    )
    views.register(app, development=development)
    app.jinja_env.globals.update(countries=COUNTRIES, development=development)

    @app.after_request
    def security_headers(response: Response) -> Response:
        # Pages show QR codes and keys: never cache them; no framing, no foreign content.
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; object-src 'none'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        return response

    @app.cli.command("make-admin")
    @click.argument("username")
    def make_admin(username: str) -> None:
        """Give USERNAME the user-management role (reset and unlock other users)."""
        if not app.extensions["flask_app"].accounts.set_admin(username):
            raise click.ClickException(f"no user {username!r}")
        click.echo(f"{username} is now an administrator")

    return app
