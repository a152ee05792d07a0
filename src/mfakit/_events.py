"""Ready-made event sinks."""

from __future__ import annotations

import logging
import threading

from mfakit._models import Event, EventType

__all__ = ["ListSink", "LoggingSink"]


class LoggingSink:
    """Writes each event as one structured log record on the ``mfakit.audit`` logger.

    Events hold no secrets, so every field is logged (ISM-1683).
    """

    def __init__(self, logger: logging.Logger | None = None, *, level: int = logging.INFO) -> None:
        self.logger = logger if logger is not None else logging.getLogger("mfakit.audit")
        self.level = level

    def emit(self, event: Event) -> None:
        """Log ``event``."""
        self.logger.log(
            self.level,
            "mfakit %s subject=%s tenant=%s factor=%s reason=%s actor=%s",
            event.type.value,
            event.subject_id,
            event.tenant,
            event.factor,
            event.reason,
            event.actor,
            extra={"mfakit_event": event},
        )


class ListSink:
    """Keeps events in a list, for tests. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[Event] = []

    def emit(self, event: Event) -> None:
        """Append ``event``."""
        with self._lock:
            self._events.append(event)

    @property
    def events(self) -> list[Event]:
        """A copy of the events so far, oldest first."""
        with self._lock:
            return list(self._events)

    def of_type(self, type_: EventType) -> list[Event]:
        """The events of one type."""
        return [e for e in self.events if e.type is type_]

    def clear(self) -> None:
        """Forget every event."""
        with self._lock:
            self._events.clear()
