"""What the register keeps about a user besides Django's ``User``."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models


class Profile(models.Model):
    """One per user: the opt-in during the grace period.

    mfakit's own records (challenges, secret questions, lock state) are in the mfakit
    store, keyed by the user's primary key (``Subject.id``).
    """

    user: models.OneToOneField[Any, Any] = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="register_profile"
    )
    #: Chose "set up now" during the grace period: MFA is required for them from then on.
    mfa_opted_in: models.BooleanField[bool, bool] = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"Profile {self.pk}"
