"""The tables behind :class:`~mfakit.contrib.django.DjangoStore`.

One model per record type of :mod:`mfakit`, with the same columns as
:class:`~mfakit.storage.SQLStore` so the two stores describe one schema. Every table has
a ``version`` column: :class:`DjangoStore` writes only through conditional statements on
it (see the atomic contract of :class:`~mfakit.typing.Store`). Do not write these rows
with ``save()`` or the admin: a write that skips the version check can undo a replay
mark or a failure count.

Secrets (``secret``) are the encrypted blobs the :class:`~mfakit.Keyring` made and codes
(``code_hash``) are keyed hashes, so nothing here is usable in clear.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from django.db import models

__all__ = ["ChallengeRecord", "CredentialRecord", "LockStateRecord", "QuotaRecord"]

_ID: Final = 255  # Subject.id allows 255 characters; record ids are much shorter
_KEY: Final = 200  # send-quota keys ("dest:<keyed hash>", "subject:<id>", ...)


class CredentialRecord(models.Model):
    """One :class:`~mfakit.Credential` (pending or active)."""

    id: models.CharField[str, str] = models.CharField(primary_key=True, max_length=_ID)
    subject_id: models.CharField[str, str] = models.CharField(max_length=_ID)
    tenant: models.CharField[str | None, str | None] = models.CharField(max_length=_ID, null=True)
    factor: models.CharField[str, str] = models.CharField(max_length=64)
    label: models.TextField[str, str] = models.TextField()
    status: models.CharField[str, str] = models.CharField(max_length=16)
    created_at: models.DateTimeField[dt.datetime, dt.datetime] = models.DateTimeField()
    expires_at: models.DateTimeField[dt.datetime | None, dt.datetime | None] = models.DateTimeField(
        null=True
    )
    confirmed_at: models.DateTimeField[dt.datetime | None, dt.datetime | None] = (
        models.DateTimeField(null=True)
    )
    last_used_at: models.DateTimeField[dt.datetime | None, dt.datetime | None] = (
        models.DateTimeField(null=True)
    )
    counter: models.BigIntegerField[int, int] = models.BigIntegerField()
    #: Factor parameters as canonical JSON text (tuples come back as lists).
    params: models.TextField[str, str] = models.TextField()
    secret: models.BinaryField[bytes, bytes | memoryview] = models.BinaryField()
    version: models.BigIntegerField[int, int] = models.BigIntegerField()
    #: Insertion order within a subject, for "oldest first" among equal ``created_at``.
    seq: models.BigIntegerField[int, int] = models.BigIntegerField()

    class Meta:
        db_table = "mfakit_credential"
        indexes = [  # noqa: RUF012 - Django reads Meta attributes as plain class data
            models.Index(fields=["subject_id"], name="mfakit_credential_subject"),
            models.Index(fields=["tenant"], name="mfakit_credential_tenant"),
        ]


class ChallengeRecord(models.Model):
    """One :class:`~mfakit.Challenge` (an outstanding verification)."""

    id: models.CharField[str, str] = models.CharField(primary_key=True, max_length=_ID)
    subject_id: models.CharField[str, str] = models.CharField(max_length=_ID)
    tenant: models.CharField[str | None, str | None] = models.CharField(max_length=_ID, null=True)
    factor: models.CharField[str, str] = models.CharField(max_length=64)
    created_at: models.DateTimeField[dt.datetime, dt.datetime] = models.DateTimeField()
    expires_at: models.DateTimeField[dt.datetime, dt.datetime] = models.DateTimeField()
    max_attempts: models.IntegerField[int, int] = models.IntegerField()
    attempts: models.IntegerField[int, int] = models.IntegerField()
    credential_id: models.CharField[str | None, str | None] = models.CharField(
        max_length=_ID, null=True
    )
    code_hash: models.BinaryField[bytes, bytes | memoryview] = models.BinaryField()
    sends: models.IntegerField[int, int] = models.IntegerField()
    resend_at: models.DateTimeField[dt.datetime | None, dt.datetime | None] = models.DateTimeField(
        null=True
    )
    destination_hint: models.TextField[str | None, str | None] = models.TextField(null=True)
    #: The prompts (secret-question ids) as a JSON list.
    prompts: models.TextField[str, str] = models.TextField()
    version: models.BigIntegerField[int, int] = models.BigIntegerField()

    class Meta:
        db_table = "mfakit_challenge"
        indexes = [  # noqa: RUF012 - Django reads Meta attributes as plain class data
            models.Index(fields=["subject_id"], name="mfakit_challenge_subject"),
            models.Index(fields=["expires_at"], name="mfakit_challenge_expires"),
        ]


class LockStateRecord(models.Model):
    """One subject's :class:`~mfakit.LockState` (failure count and lockout)."""

    subject_id: models.CharField[str, str] = models.CharField(primary_key=True, max_length=_ID)
    failures: models.IntegerField[int, int] = models.IntegerField()
    locked_until: models.DateTimeField[dt.datetime | None, dt.datetime | None] = (
        models.DateTimeField(null=True)
    )
    suspended: models.BooleanField[bool, bool] = models.BooleanField()
    lockouts: models.IntegerField[int, int] = models.IntegerField()
    version: models.BigIntegerField[int, int] = models.BigIntegerField()

    class Meta:
        db_table = "mfakit_lock_state"


class QuotaRecord(models.Model):
    """One :class:`~mfakit.QuotaState` (recent sends counted against a send quota)."""

    key: models.CharField[str, str] = models.CharField(primary_key=True, max_length=_KEY)
    #: The send times as a JSON list of ISO 8601 UTC strings.
    sent: models.TextField[str, str] = models.TextField()
    version: models.BigIntegerField[int, int] = models.BigIntegerField()

    class Meta:
        db_table = "mfakit_quota"
