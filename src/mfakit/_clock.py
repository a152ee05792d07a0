"""Time sources. mfakit never reads the wall clock directly: it asks a :class:`Clock`.

Only the server's clock counts (SECURITY.md 6): no API accepts a client-supplied time.
"""

from __future__ import annotations

import datetime as dt
import threading

from mfakit.exceptions import InvalidInput, InvalidType

__all__ = ["FakeClock", "SystemClock", "utc"]


def utc(value: dt.datetime) -> dt.datetime:
    """Return ``value`` as an aware UTC datetime.

    Raises:
        InvalidType: If ``value`` is not a datetime.
        InvalidInput: If it is naive (a naive time is ambiguous; we refuse to guess).
    """
    if not isinstance(value, dt.datetime):
        raise InvalidType(f"expected datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput("naive datetime: pass an aware datetime (for example in UTC)")
    return value.astimezone(dt.timezone.utc)


class SystemClock:
    """The real clock: ``datetime.now(timezone.utc)``."""

    __slots__ = ()

    def now(self) -> dt.datetime:
        """Return the current time as an aware UTC datetime."""
        return dt.datetime.now(dt.timezone.utc)

    def __repr__(self) -> str:
        return "SystemClock()"


class FakeClock:
    """A clock that moves only when told to. For tests and scripted demos.

    Args:
        start: The initial time (aware), or ``None`` for 2026-01-01T00:00:00Z.

    Thread-safe: concurrent tests may read it while one thread advances it.
    """

    __slots__ = ("_lock", "_now")

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = (
            utc(start) if start is not None else dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
        )
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        """Return the frozen current time."""
        return self._now

    def advance(self, delta: dt.timedelta | float = 0.0, /, **kwargs: float) -> dt.datetime:
        """Move forward by ``delta`` (a timedelta or seconds) plus timedelta keyword parts.

        ``clock.advance(30)``, ``clock.advance(minutes=5)``. Returns the new time.

        Raises:
            InvalidInput: When asked to move backwards.
        """
        if isinstance(delta, bool) or not isinstance(delta, (dt.timedelta, int, float)):
            raise InvalidType(f"advance() takes a timedelta or seconds, not {type(delta).__name__}")
        step = delta if isinstance(delta, dt.timedelta) else dt.timedelta(seconds=delta)
        try:
            step += dt.timedelta(**kwargs)
        except TypeError as exc:
            raise InvalidType(f"bad timedelta parts for advance(): {exc}") from None
        if step < dt.timedelta(0):
            raise InvalidInput("FakeClock only moves forward; use set() to jump back")
        with self._lock:
            self._now += step
            return self._now

    def set(self, when: dt.datetime) -> None:
        """Jump to ``when`` (aware), forwards or backwards."""
        with self._lock:
            self._now = utc(when)

    def __repr__(self) -> str:
        return f"FakeClock({self._now.isoformat()})"
