"""mfakit store factories; ``settings.MFAKIT_STORE`` names the one in use."""

from __future__ import annotations

from django.conf import settings

from mfakit.typing import Store


def sql_store() -> Store:
    """mfakit's SQLAlchemy store on ``settings.MFAKIT_SQL_URL`` (its own SQLite file by
    default); the tables are created on first use."""
    from mfakit.storage.sql import SQLStore

    return SQLStore(settings.MFAKIT_SQL_URL, create=True)


def django_store() -> Store:
    """mfakit's records in Django's own database (``python manage.py migrate`` creates the
    tables; needs ``"mfakit.contrib.django"`` in ``INSTALLED_APPS``)."""
    from mfakit.contrib.django.store import DjangoStore

    return DjangoStore()
