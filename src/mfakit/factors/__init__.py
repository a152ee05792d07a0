"""The factors mfakit ships."""

from mfakit.factors._base import Factor, FactorSetup
from mfakit.factors.totp import TOTP, TOTPEnrollment, TOTPSetup

__all__ = ["TOTP", "Factor", "FactorSetup", "TOTPEnrollment", "TOTPSetup"]
