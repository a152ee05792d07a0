"""The Django application config of :mod:`mfakit.contrib.django` (app label ``mfakit``)."""

from __future__ import annotations

from django.apps import AppConfig

__all__ = ["MFAKitConfig"]


class MFAKitConfig(AppConfig):
    """mfakit's tables for :class:`~mfakit.contrib.django.DjangoStore`.

    Add ``"mfakit.contrib.django"`` to ``INSTALLED_APPS`` and run ``manage.py migrate``.
    The label ``mfakit`` names the migrations (``migrate mfakit``); the tables are
    ``mfakit_credential``, ``mfakit_challenge``, ``mfakit_lock_state`` and ``mfakit_quota``.
    """

    name = "mfakit.contrib.django"
    label = "mfakit"
    verbose_name = "mfakit multi-factor authentication"
    # Every primary key is an explicit CharField (mfakit's own ids), so this is never used;
    # set so a project's DEFAULT_AUTO_FIELD can never produce a migration for this app.
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the system checks (``manage.py check``)."""
        from mfakit.contrib.django import checks  # noqa: F401 - registers on import
