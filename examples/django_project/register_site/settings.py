"""Settings of the register demo: Django's auth, sessions and CSRF, plus mfakit.

Everything a deployment changes comes from environment variables, so the same file serves
``runserver`` on a laptop, the browser tests (which start it with a temporary database
and a short inactivity timeout) and production:

======================== =================================================================
variable                 meaning (default)
======================== =================================================================
DJANGO_DEBUG             ``1`` for development (default), ``0`` in production
DJANGO_SECRET_KEY        required when DJANGO_DEBUG=0
DJANGO_ALLOWED_HOSTS     comma-separated (``localhost,127.0.0.1`` in development)
DEMO_DATA_DIR            where the SQLite files go (this directory)
MFAKIT_KEYS              mfakit's keyring, ``KEYID:KEY,...`` (a fixed key in development)
MFAKIT_LAUNCHED_AT       ISO date or datetime MFA was launched (today, 00:00 UTC): the
                         three-month grace period runs from there
MFAKIT_IDLE_SECONDS      inactivity timeout in seconds (the policy default, 1 hour)
MFAKIT_DEMO_DEV_TOOLS    ``1`` shows the dev outbox and clock pages (default: DJANGO_DEBUG)
DEMO_FAST_HASHING        ``1`` for tests only: cheap password and answer hashing
DJANGO_EMAIL_BACKEND     Django e-mail backend (locmem in development, SMTP otherwise)
======================== =================================================================
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = _flag("DJANGO_DEBUG", True)

if DEBUG:
    SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "django-insecure-register-demo-only")
else:  # pragma: no cover - production configuration
    SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]

ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",")
    if host.strip()
]

DATA_DIR = Path(os.environ.get("DEMO_DATA_DIR", str(BASE_DIR)))

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "mfakit.contrib.django",  # DjangoStore's tables (manage.py migrate creates them)
    "portal",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # After AuthenticationMiddleware: a user who passed the password but not the second
    # step reaches only the exempt views below (SECURITY.md 32).
    "mfakit.contrib.django.middleware.MFARequiredMiddleware",
]

ROOT_URLCONF = "register_site.urls"
WSGI_APPLICATION = "register_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.views.site_context",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATA_DIR / "db.sqlite3",
        # Threads share the file: WAL lets readers run beside the writer, the busy
        # timeout makes a writer wait for the lock (docs/django.md, SQLite).
        "OPTIONS": {
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        },
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-au"
TIME_ZONE = "UTC"
USE_TZ = True
USE_I18N = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
if _flag("DEMO_FAST_HASHING", False):
    # Browser tests only: each sign-in would otherwise spend half a second in PBKDF2.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"

# --- sessions and cookies ----------------------------------------------------------------
# The idle timeout and the absolute lifetime are mfakit's (Policy.session, checked by the
# middleware on every request, SECURITY.md 34). The cookie lives no longer than the
# lifetime; HttpOnly keeps it from scripts, SameSite=Lax from cross-site posts, and
# outside DEBUG it is sent over HTTPS only (OWASP Session Management Cheat Sheet).
MFAKIT_IDLE_SECONDS = int(os.environ.get("MFAKIT_IDLE_SECONDS", "3600"))
MFAKIT_SESSION_HOURS = 24
SESSION_COOKIE_AGE = MFAKIT_SESSION_HOURS * 3600
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SECURE = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if not DEBUG:  # pragma: no cover - production configuration
    SECURE_SSL_REDIRECT = _flag("DJANGO_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = 31536000
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- e-mail ---------------------------------------------------------------------------
# Development keeps messages in memory, listed by the dev outbox page (/dev/outbox/).
EMAIL_BACKEND = os.environ.get(
    "DJANGO_EMAIL_BACKEND",
    "django.core.mail.backends.locmem.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = os.environ.get("DJANGO_EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("DJANGO_EMAIL_PORT", "25"))
EMAIL_USE_TLS = _flag("DJANGO_EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = "no-reply@register.example"

# --- mfakit -----------------------------------------------------------------------------
# The store: one dotted path. portal.stores.django_store keeps mfakit's records in
# Django's own database (mfakit.contrib.django.DjangoStore); "portal.stores.sql_store"
# keeps them in a database of their own through SQLAlchemy (pip install "mfakit[sql]").
MFAKIT_STORE = "portal.stores.django_store"
MFAKIT_SQL_URL = os.environ.get("MFAKIT_SQL_URL", f"sqlite:///{DATA_DIR / 'mfakit.sqlite3'}")

# A fixed key for development only; production sets MFAKIT_KEYS (Keyring.generate_key()).
_DEV_KEYS = "dev-only:J0N1qroQkBl4ehbqNvexT5_Pb8ZbahvI049zvN4gNUA"
MFAKIT_KEYS = os.environ.get("MFAKIT_KEYS", _DEV_KEYS) if DEBUG else os.environ["MFAKIT_KEYS"]


def _launch(value: str | None) -> dt.datetime:
    if not value:
        today = dt.datetime.now(dt.timezone.utc).date()
        return dt.datetime(today.year, today.month, today.day, tzinfo=dt.timezone.utc)
    parsed = dt.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


#: When MFA was launched; the grace period ends three calendar months later.
MFAKIT_LAUNCHED_AT = _launch(os.environ.get("MFAKIT_LAUNCHED_AT"))
#: Cheap argon2id parameters for the tests (the default is SecretHasher()'s).
MFAKIT_FAST_HASHING = _flag("DEMO_FAST_HASHING", False)
#: The dev outbox and the dev clock (404 unless on).
MFAKIT_DEMO_DEV_TOOLS = _flag("MFAKIT_DEMO_DEV_TOOLS", DEBUG)

# mfakit.contrib.django.middleware
MFAKIT_FLOW = "portal.mfa.get_flow"
MFAKIT_SUBJECT = "portal.mfa.subject_for"
MFAKIT_STEP_URL = "mfakit-step"
MFAKIT_EXEMPT_URL_NAMES = ["logout", "dev:*"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    # mfakit's audit events (LoggingSink) carry no secret, so they may go anywhere.
    "loggers": {"mfakit": {"handlers": ["console"], "level": "INFO"}},
}
