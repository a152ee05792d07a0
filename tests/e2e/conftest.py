"""Browser fixtures: the Flask example on a loopback port, and Debian's chromium via Playwright.

* ``chromium_path``: ``/usr/bin/chromium``; without it the browser tests are skipped with
  the reason, except under ``CI=true``, where a missing browser is a failure.
* ``browser``: one headless chromium per test module (Playwright never downloads one).
* ``flask_server``: the example (``examples/flask_app``) in development mode, with a
  temporary instance folder (its own SQLite file and generated keys), served by werkzeug's
  ``make_server`` in a thread on a free port of 127.0.0.1, real clock. The SMS resend
  cooldown is 2 seconds so a test waits that long at most.
* ``idle_server``: the same with a 4-second inactivity timeout.
* ``context``: a fresh browser context (cookies) per test, viewport 1000x700.
* ``shot``: saves a screenshot of a page to ``build/screenshots/flask/<name>.png``.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "build" / "screenshots" / "flask"
VIEWPORT = {"width": 1000, "height": 700}

Shot = Callable[[Any, str], None]


def load_example() -> Any:
    """``examples/flask_app`` as a module (``examples/`` is not a package)."""
    examples = str(ROOT / "examples")
    if examples not in sys.path:
        sys.path.insert(0, examples)
    return importlib.import_module("flask_app")


@dataclass
class Server:
    """A running example: its base URL and the Flask app (to reach its services)."""

    url: str
    app: Any

    @property
    def services(self) -> Any:
        return self.app.extensions["flask_app"]


def _serve(config: dict[str, Any]) -> Iterator[Server]:
    from werkzeug.serving import make_server

    from mfakit.hazmat.hashing import SecretHasher

    app = load_example().create_app(
        {
            "DEVELOPMENT": True,
            "SMS_RESEND_COOLDOWN": dt.timedelta(seconds=2),
            # The cheapest argon2id mfakit accepts, so sign-ups and PINs stay fast.
            "HASHER": SecretHasher.owasp_minimum(),
            **config,
        }
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="flask-example", daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{server.server_port}", app)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        app.extensions["flask_app"].store.close()


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is not installed (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium_path: Path) -> Iterator[Any]:
    # Per module, not per session: a running sync Playwright owns an event loop, and other
    # browser-test modules (the Django example's) start their own.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(chromium_path), headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def flask_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _serve({"INSTANCE_PATH": tmp_path_factory.mktemp("flask-instance")})


@pytest.fixture(scope="module")
def idle_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _serve(
        {
            "INSTANCE_PATH": tmp_path_factory.mktemp("flask-idle-instance"),
            "IDLE_TIMEOUT": dt.timedelta(seconds=4),
        }
    )


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport=VIEWPORT)
    ctx.set_default_timeout(15_000)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture(scope="session")
def shot() -> Shot:
    SHOTS.mkdir(parents=True, exist_ok=True)

    def save(page: Any, name: str) -> None:
        page.screenshot(path=str(SHOTS / f"{name}.png"))

    return save
