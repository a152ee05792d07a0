"""The test kit: everything a host's test suite needs to run mfakit in memory.

* :class:`FakeClock` moves only when told to (no sleeps in tests);
* :class:`MemoryStore` honours the full store contract;
* :class:`ListSink` records audit events (:class:`LoggingSink`, also in :mod:`mfakit`,
  writes them to a logger);
* :class:`Outbox` captures SMS and e-mail instead of sending them (and can fail on demand);
* :class:`StoreContract` is a conformance suite any :class:`~mfakit.typing.Store` can run;
* :func:`totp_now` computes the code an authenticator app would show.

A pytest plugin (loaded automatically) provides the fixtures ``mfa_clock``, ``mfa_store``,
``mfa_events`` and ``mfa_keyring``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from mfakit._clock import FakeClock
from mfakit._events import ListSink, LoggingSink
from mfakit.hazmat.otp import Algorithm, decode_secret, totp
from mfakit.storage.memory import MemoryStore
from mfakit.testing.outbox import Outbox, SentSMS

if TYPE_CHECKING:
    from mfakit.testing.contract import StoreContract

__all__ = [
    "FakeClock",
    "ListSink",
    "LoggingSink",
    "MemoryStore",
    "Outbox",
    "SentSMS",
    "StoreContract",
    "totp_now",
]


def totp_now(
    secret: str,
    at: dt.datetime,
    *,
    digits: int = 6,
    period: int = 30,
    algorithm: Algorithm = "SHA1",
    offset: int = 0,
) -> str:
    """The code an authenticator app shows for a base32 ``secret`` at time ``at``.

    ``offset`` shifts by whole periods (``-1`` for the previous code).
    """
    when = at.timestamp() + offset * period
    return totp(decode_secret(secret), when, period=period, digits=digits, algorithm=algorithm)


def __getattr__(name: str) -> Any:
    # StoreContract imports pytest; load it only for those who ask.
    if name == "StoreContract":
        from mfakit.testing.contract import StoreContract

        return StoreContract
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
