"""mfakit for Django: a :class:`~mfakit.typing.Store` on the Django ORM.

Add the app to ``INSTALLED_APPS`` (its label is ``mfakit``), run ``manage.py migrate``,
and hand a :class:`DjangoStore` to :class:`~mfakit.MFA`::

    INSTALLED_APPS = [..., "mfakit.contrib.django"]

    from mfakit import MFA, Keyring
    from mfakit.contrib.django import DjangoStore
    from mfakit.factors import TOTP

    mfa = MFA(store=DjangoStore(), keyring=Keyring.from_env(), factors=[TOTP(issuer="ACME")])

Importing this package needs Django (``pip install "mfakit[django]"``) but not a
configured project: the models load on the store's first call.
"""

from __future__ import annotations

try:
    import django  # noqa: F401 - only to give a useful message when it is missing
except ImportError as error:  # pragma: no cover - the "django" extra is not installed
    raise ImportError('mfakit.contrib.django needs Django: pip install "mfakit[django]"') from error

from mfakit.contrib.django.store import DjangoStore

__all__ = ["DjangoStore"]
