"""System checks for :mod:`mfakit.contrib.django` (run by ``manage.py check``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core import checks

__all__ = ["check_use_tz"]


@checks.register(checks.Tags.compatibility)
def check_use_tz(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """``mfakit.E001``: :class:`DjangoStore` needs ``USE_TZ = True``.

    mfakit works in aware UTC datetimes (lockout, expiry and quota windows compare
    instants). With ``USE_TZ = False`` Django stores and returns naive local times, so
    the store refuses to run rather than misread an instant.
    """
    if settings.USE_TZ:
        return []
    return [
        checks.Error(
            "mfakit.contrib.django needs USE_TZ = True.",
            hint="Set USE_TZ = True in your settings (Django's default since 5.0).",
            id="mfakit.E001",
        )
    ]
