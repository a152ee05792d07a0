"""MemoryStore passes the store conformance suite that ships in ``mfakit.testing``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mfakit.testing import MemoryStore, StoreContract
from mfakit.typing import Store

SRC = Path(__file__).resolve().parents[1] / "src"


class TestMemoryStore(StoreContract):
    """Every check of :class:`StoreContract`, run on :class:`MemoryStore`."""

    @pytest.fixture
    def store(self) -> Store:
        return MemoryStore()


def test_memory_store_satisfies_the_store_protocol() -> None:
    assert isinstance(MemoryStore(), Store)


def test_contract_collects_every_check() -> None:
    checks = [name for name in dir(StoreContract) if name.startswith("test_")]
    assert len(checks) >= 15
    for name in checks:
        assert getattr(TestMemoryStore, name) is getattr(StoreContract, name)


def test_subclass_without_store_fixture_fails_with_a_clear_message(tmp_path: Path) -> None:
    """A host that forgets the fixture is told what to do, by every check."""
    test_file = tmp_path / "test_forgot_fixture.py"
    test_file.write_text(
        textwrap.dedent(
            """
            from mfakit.testing import StoreContract

            class TestForgotFixture(StoreContract):
                pass
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    env.pop("PYTEST_ADDOPTS", None)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(test_file),
            "-q",
            "-p",
            "no:mfakit",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            "-k",
            "round_trips_every_field or unknown_ids",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output  # tests errored, not passed and not crashed
    assert "3 errors" in output, output
    assert "NotImplementedError" in output
    assert "subclass StoreContract and provide a 'store' fixture" in output
    assert " passed" not in output
