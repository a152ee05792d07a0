"""The factors mfakit ships."""

from mfakit.factors._base import Factor, FactorSetup
from mfakit.factors._delivered import DeliveredCodeFactor, SendQuotas
from mfakit.factors.email import EmailOTP, EmailSetup, EmailTemplate
from mfakit.factors.sms import SMSOTP, SMSSetup
from mfakit.factors.totp import TOTP, TOTPEnrollment, TOTPSetup

__all__ = [
    "SMSOTP",
    "TOTP",
    "DeliveredCodeFactor",
    "EmailOTP",
    "EmailSetup",
    "EmailTemplate",
    "Factor",
    "FactorSetup",
    "SMSSetup",
    "SendQuotas",
    "TOTPEnrollment",
    "TOTPSetup",
]
