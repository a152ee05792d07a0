"""``python -m mfakit`` and the ``mfakit`` script: see :mod:`mfakit._cli` and ``docs/cli.md``."""

from __future__ import annotations

import sys

from mfakit._cli import main

__all__ = ["main"]

if __name__ == "__main__":  # pragma: no cover - exercised through subprocess tests
    sys.exit(main())
