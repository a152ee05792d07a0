"""The factors mfakit ships."""

from mfakit.factors._base import Factor, FactorSetup
from mfakit.factors._delivered import DeliveredCodeFactor, SendQuotas
from mfakit.factors.email import EmailOTP, EmailSetup, EmailTemplate
from mfakit.factors.recovery_codes import RecoveryCodeBatch, RecoveryCodes, RecoveryCodesSetup
from mfakit.factors.recovery_pin import PINSetup, RecoveryPIN
from mfakit.factors.secret_questions import AnswerRules, QuestionSetup, SecretQuestions
from mfakit.factors.sms import SMSOTP, SMSSetup
from mfakit.factors.totp import TOTP, TOTPEnrollment, TOTPSetup

__all__ = [
    "SMSOTP",
    "TOTP",
    "AnswerRules",
    "DeliveredCodeFactor",
    "EmailOTP",
    "EmailSetup",
    "EmailTemplate",
    "Factor",
    "FactorSetup",
    "PINSetup",
    "QuestionSetup",
    "RecoveryCodeBatch",
    "RecoveryCodes",
    "RecoveryCodesSetup",
    "RecoveryPIN",
    "SMSSetup",
    "SecretQuestions",
    "SendQuotas",
    "TOTPEnrollment",
    "TOTPSetup",
]
