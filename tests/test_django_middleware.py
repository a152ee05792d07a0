"""mfakit.contrib.django's middleware and decorators, through Django's test client.

The cases are in ``django_middleware_cases.py``. They need ``django.contrib.auth`` and
sessions installed, and Django can be configured only once per process (the rest of the
suite configures it through ``django_settings.py`` without them), so they run in a fresh
interpreter: one ``python -m pytest`` subprocess for the module, whose JUnit report gives
each case below its own pass or failure. What the cases prove:

* a user who passed the password but not the second step reaches only exempt views (the
  step page, ``MFAKIT_EXEMPT_URL_NAMES`` with namespace wildcards, ``@mfa_exempt``), and
  is redirected to the step page with ``next`` (never for a POST);
* completing the sign-in rotates the session id (SECURITY.md 32);
* the policy's idle timeout and session lifetime sign the user out (SECURITY.md 34), on
  exempt views too; so do a tampered token, a token of another session, a login that
  skipped the flow and a pending sign-in older than the flow's ten minutes;
* ``@mfa_required`` applies the same guard without the middleware;
* configuration mistakes raise ``ImproperlyConfigured``.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytest.importorskip("django", reason="Django is not installed (pip install 'mfakit[django]')")

CASES = Path(__file__).with_name("django_middleware_cases.py")
ROOT = Path(__file__).resolve().parents[1]


def case_names() -> list[str]:
    """The test functions of the cases module, read from its source (nothing imported)."""
    tree = ast.parse(CASES.read_text(encoding="utf-8"))
    return [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    ]


Outcome = tuple[str, str]  # ("passed" | "failed" | "skipped", details)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Outcome]]:
    report = tmp_path_factory.mktemp("django-middleware") / "junit.xml"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(CASES),
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode not in (0, 1) or not report.exists():
        pytest.fail(f"the cases did not run:\n{done.stdout}\n{done.stderr}", pytrace=False)
    found: dict[str, list[Outcome]] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = case.get("name", "").split("[", 1)[0]
        result: Outcome = ("passed", "")
        for child in case:
            if child.tag in ("failure", "error"):
                result = ("failed", f"{child.get('message', '')}\n{child.text or ''}")
            elif child.tag == "skipped":
                result = ("skipped", child.get("message", ""))
        found.setdefault(name, []).append(result)
    return found


def test_every_case_was_collected(outcomes: dict[str, list[Outcome]]) -> None:
    assert sorted(outcomes) == sorted(case_names())


@pytest.mark.parametrize("case", case_names())
def test_case(case: str, outcomes: dict[str, list[Outcome]]) -> None:
    results = outcomes.get(case)
    assert results, f"{case} did not run"
    for status, details in results:
        if status == "failed":
            pytest.fail(details, pytrace=False)
        if status == "skipped":
            pytest.skip(details)
