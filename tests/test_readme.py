"""The README's quickstart runs exactly as printed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)


def test_readme_has_exactly_two_setup_commands_near_the_top() -> None:
    text = README.read_text(encoding="utf-8")
    first_block = re.search(r"```sh\n(.*?)```", text, re.DOTALL)
    assert first_block is not None
    assert text.index(first_block.group(0)) < 600
    commands = [line for line in first_block.group(1).splitlines() if line.strip()]
    assert [c.split("#")[0].strip() for c in commands] == [
        "sh scripts/demo.sh",
        "sh scripts/test.sh",
    ]


def test_quickstart_runs_as_printed(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = python_blocks()
    assert blocks, "README has no python block"
    exec(compile(blocks[0], str(README), "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    assert "u1 verified with totp at 00:00:30" in out
    assert "refused: The code could not be verified." in out
