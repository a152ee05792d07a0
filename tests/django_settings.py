"""One in-process Django configuration for the whole test suite (imported, never collected).

Django's settings can be configured once per process, so every test module that needs
Django *in this process* calls :func:`configure` instead of ``settings.configure``: the
first call wins and later calls get the same databases. Nothing runs at import, and no
other test depends on Django being configured (the example project's tests run it in a
subprocess with its own settings).

Databases (each name is unique to this process, so concurrent runs never share one):

* ``default``: a SQLite file (WAL, a 30 s busy timeout) in the directory given;
* ``unmigrated``: another SQLite file whose tables are never created (error paths);
* ``postgres``: when ``MFAKIT_TEST_POSTGRES_URL`` is set, that server and database, with
  ``search_path`` set to a schema of this process's own (:data:`POSTGRES_SCHEMA`): the
  test that uses it creates the schema, migrates into it, and drops it afterwards.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urlsplit

__all__ = [
    "APPLICATION_NAME",
    "POSTGRES",
    "POSTGRES_ENV",
    "POSTGRES_SCHEMA",
    "UNMIGRATED",
    "configure",
    "postgres_connect_kwargs",
]

POSTGRES_ENV: Final = "MFAKIT_TEST_POSTGRES_URL"
#: The database aliases besides ``default``.
POSTGRES: Final = "postgres"
UNMIGRATED: Final = "unmigrated"
#: The PostgreSQL schema the ``postgres`` alias works in (its ``search_path``).
POSTGRES_SCHEMA: Final = f"mfakit_django_{uuid.uuid4().hex[:10]}"
#: Tells this process's PostgreSQL connections apart in ``pg_stat_activity``.
APPLICATION_NAME: Final = f"mfakit-tests-{POSTGRES_SCHEMA}"


def postgres_connect_kwargs(url: str) -> dict[str, Any]:
    """libpq keywords from an SQLAlchemy-style URL (``postgresql+psycopg://u:p@h:port/db``)."""
    parts = urlsplit(url)
    if not parts.scheme.startswith("postgresql"):
        raise ValueError(f"{POSTGRES_ENV} must be a postgresql:// URL")
    found: dict[str, Any] = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "user": unquote(parts.username or "postgres"),
        "dbname": unquote(parts.path.lstrip("/")) or "postgres",
    }
    if parts.password is not None:
        found["password"] = unquote(parts.password)
    return found


def _sqlite(path: str) -> dict[str, Any]:
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": path,
        # Threads share the file: WAL lets readers run beside the writer, and the busy
        # timeout makes a writer wait for the lock instead of failing at once.
        "OPTIONS": {
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        },
    }


def _databases(directory: Path) -> dict[str, dict[str, Any]]:
    databases = {
        "default": _sqlite(str(directory / "mfa.sqlite3")),
        UNMIGRATED: _sqlite(str(directory / "unmigrated.sqlite3")),
    }
    url = os.environ.get(POSTGRES_ENV)
    if url:
        kwargs = postgres_connect_kwargs(url)
        databases[POSTGRES] = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": kwargs["dbname"],
            "USER": kwargs["user"],
            "PASSWORD": kwargs.get("password", ""),
            "HOST": kwargs["host"],
            "PORT": str(kwargs["port"]),
            "OPTIONS": {
                "options": f"-c search_path={POSTGRES_SCHEMA}",
                "application_name": APPLICATION_NAME,
                "connect_timeout": 5,
            },
        }
    return databases


def configure(directory: Path) -> None:
    """Configure Django for this process (once) and run ``django.setup()``.

    Args:
        directory: Where the SQLite files go: a pytest temporary directory, so pytest
            cleans it up like any other.

    A no-op when Django is already configured; the caller checks that what it needs
    (an installed app, a database alias) is there.
    """
    import django
    from django.conf import settings

    if settings.configured:
        return
    settings.configure(
        DEBUG=False,
        SECRET_KEY="mfakit-tests-only",
        INSTALLED_APPS=["mfakit.contrib.django"],
        DATABASES=_databases(directory),
        USE_TZ=True,
        # Not UTC: the store must write and read UTC whatever the project's zone is.
        TIME_ZONE="Australia/Sydney",
    )
    django.setup()
