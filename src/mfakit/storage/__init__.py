"""Store implementations. See :class:`mfakit.typing.Store` for the contract.

:class:`SQLStore` (extra ``sql``) is loaded on first use, so ``import mfakit.storage`` does
not import SQLAlchemy.
"""

from typing import TYPE_CHECKING, Any

from mfakit.storage.memory import MemoryStore

if TYPE_CHECKING:
    from mfakit.storage.sql import SQLStore

__all__ = ["MemoryStore", "SQLStore"]


def __getattr__(name: str) -> Any:
    if name == "SQLStore":
        from mfakit.storage.sql import SQLStore

        return SQLStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
