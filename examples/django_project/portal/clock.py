"""The demo's clock: the real time, shifted by the dev clock page.

mfakit never reads the wall clock itself; it asks its ``Clock``. Shifting this one lets a
developer (and the browser tests) see the register before and after the end of the grace
period without waiting three months. The dev clock page exists only with
``MFAKIT_DEMO_DEV_TOOLS``; in production the offset is always zero.
"""

from __future__ import annotations

import datetime as dt
import threading


class ShiftableClock:
    """``SystemClock`` plus an offset (zero unless the dev clock page sets one)."""

    def __init__(self) -> None:
        self._offset = dt.timedelta(0)
        self._lock = threading.Lock()

    def real_now(self) -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc)

    def now(self) -> dt.datetime:
        with self._lock:
            return self.real_now() + self._offset

    @property
    def offset(self) -> dt.timedelta:
        with self._lock:
            return self._offset

    def set_time(self, when: dt.datetime | None) -> None:
        """Make ``now()`` read ``when`` from this moment on (``None``: the real time)."""
        with self._lock:
            self._offset = dt.timedelta(0) if when is None else when - self.real_now()


CLOCK = ShiftableClock()
