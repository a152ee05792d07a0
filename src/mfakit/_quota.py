"""Send quotas: pure rolling-window arithmetic (SECURITY.md 28, OWASP SMS pumping).

A quota allows ``limit`` sends per ``window`` for one key. The state keeps the times of the
sends still inside the window; taking a slot is a conditional write of the state with one
more time in it, so concurrent senders can never exceed the limit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from mfakit._models import QuotaState
from mfakit.exceptions import ConfigurationError, QuotaExceeded

__all__ = ["SendQuota", "release", "take"]


@dataclasses.dataclass(frozen=True, slots=True)
class SendQuota:
    """At most ``limit`` sends in any rolling ``window``.

    Raises:
        ConfigurationError: On a non-positive limit or window.
    """

    limit: int
    window: dt.timedelta = dt.timedelta(hours=1)

    def __post_init__(self) -> None:
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1:
            raise ConfigurationError("SendQuota.limit must be a positive int")
        if not isinstance(self.window, dt.timedelta) or self.window <= dt.timedelta(0):
            raise ConfigurationError("SendQuota.window must be a positive timedelta")


def take(state: QuotaState, quota: SendQuota, now: dt.datetime, *, scope: str) -> QuotaState:
    """The state with one more send at ``now``.

    Raises:
        QuotaExceeded: If ``limit`` sends already fall inside the window; ``retry_at`` is
            when the oldest of them leaves it.
    """
    start = now - quota.window
    recent = tuple(t for t in state.sent if t > start)
    if len(recent) >= quota.limit:
        raise QuotaExceeded(
            f"{scope} send quota of {quota.limit} per {quota.window} is used up",
            retry_at=recent[-quota.limit] + quota.window,
        )
    return QuotaState(state.key, (*recent, now), state.version + 1)


def release(state: QuotaState, sent_at: dt.datetime) -> QuotaState | None:
    """The state without one send at ``sent_at`` (undo a slot another quota refused)."""
    if sent_at not in state.sent:
        return None
    sent = list(state.sent)
    sent.remove(sent_at)
    return QuotaState(state.key, tuple(sent), state.version + 1)
