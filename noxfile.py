"""Developer sessions: ``nox`` runs tests, lint, typing and docs; ``nox -s benchmarks`` too.

Each session builds its own virtualenv under ``.nox/``. Arguments after ``--`` go to the
tool (``nox -s tests -- -k lockout -x``). CI does not use nox: it runs ``.ci/run``, which
does the same checks in ``.venv``.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typing", "docs"]
nox.options.reuse_existing_virtualenvs = True

LINTED = ("src", "tests", "benchmarks")


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (``oathtool`` interop tests are skipped if it is missing)."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Check style and formatting with ruff."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", *LINTED)
    session.run("ruff", "format", "--check", *LINTED)


@nox.session
def typing(session: nox.Session) -> None:
    """Type-check src, tests and benchmarks with mypy --strict (config in pyproject.toml)."""
    session.install("-e", ".[test]", "mypy>=1.10")
    session.run("mypy", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the HTML documentation with warnings as errors."""
    # The test extra too: the API reference imports mfakit.testing.StoreContract (pytest).
    session.install("-e", ".[docs,test]")
    session.run(
        "sphinx-build",
        "-W",
        "--keep-going",
        "-b",
        "html",
        "docs",
        "docs/_build/html",
        *session.posargs,
    )


@nox.session
def benchmarks(session: nox.Session) -> None:
    """Run the benchmarks under benchmarks/ (pytest-benchmark)."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", "benchmarks", "--benchmark-enable", *session.posargs)
