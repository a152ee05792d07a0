"""pytest plugin: fixtures for testing code that uses mfakit. Loaded automatically."""

from __future__ import annotations

import pytest

from mfakit._clock import FakeClock
from mfakit._events import ListSink
from mfakit.storage.memory import MemoryStore


@pytest.fixture
def mfa_clock() -> FakeClock:
    """A :class:`~mfakit.testing.FakeClock` at 2026-01-01T00:00:00Z."""
    return FakeClock()


@pytest.fixture
def mfa_store() -> MemoryStore:
    """A fresh :class:`~mfakit.testing.MemoryStore`."""
    return MemoryStore()


@pytest.fixture
def mfa_events() -> ListSink:
    """A :class:`~mfakit.testing.ListSink` recording audit events."""
    return ListSink()


@pytest.fixture
def mfa_keyring() -> object:
    """A throw-away :class:`~mfakit.Keyring` with one random key."""
    from mfakit.hazmat.secretbox import Keyring

    return Keyring.ephemeral()
