"""Store implementations. See :class:`mfakit.typing.Store` for the contract."""

from mfakit.storage.memory import MemoryStore

__all__ = ["MemoryStore"]
