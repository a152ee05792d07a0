"""Browser fixtures for the Django example: the project in a subprocess, Debian's chromium.

* ``chromium_path``: ``/usr/bin/chromium``; without it the tests are skipped with the
  reason, except under ``CI=true``, where a missing browser is a failure.
* ``browser``: one headless chromium for the module (Playwright never downloads one).
* ``django_site``: ``examples/django_project`` after ``manage.py migrate`` and
  ``manage.py seed_demo`` on a temporary data directory (its own SQLite files), served by
  ``serve.py`` (werkzeug, threaded) in a subprocess on a free port of 127.0.0.1, real
  clock, MFA launched four months ago (so the grace period is over; the dev clock page
  moves mfakit's clock back for the grace-period test).
* ``idle_site``: a second server on the same data, with a 3-second inactivity timeout.
* ``context``: a fresh browser context (cookies) per test, viewport 1000x700.
* ``shot``: saves a screenshot to ``build/screenshots/django/<name>.png``.

Settings overrides travel as environment variables (``register_site/settings.py``), so
the pytest process never configures Django itself.
"""

from __future__ import annotations

import datetime as dt
import html
import os
import re
import selectors
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "examples" / "django_project"
SERVE = Path(__file__).resolve().with_name("serve.py")
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "build" / "screenshots" / "django"
VIEWPORT = {"width": 1000, "height": 700}
PASSWORD = "e2e-Passw0rd-register"
IDLE_SECONDS = 3

#: One user per test, so a lockout or a changed address never leaks into another test.
USERS = (
    "e2e-code",
    "e2e-fallback",
    "e2e-lock",
    "e2e-grace",
    "e2e-late",
    "e2e-edit",
    "e2e-plain",
    "e2e-pending",
    "e2e-idle",
)
LEGACY_USERS = ("e2e-legacy",)
STAFF_USERS = ("e2e-admin",)

Shot = Callable[[Any, str], None]


@dataclass
class Site:
    """A running example: its base URL, with the steps a person takes."""

    url: str

    def sign_in(self, page: Any, username: str, password: str = PASSWORD) -> None:
        """The password page: username, password, "Sign in"."""
        page.goto(f"{self.url}/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("button:has-text('Sign in')")

    def confirm_details(self, page: Any) -> None:
        """The review step: "My details are correct"."""
        page.wait_for_url("**/sign-in/review/")
        page.click("button:has-text('My details are correct')")

    def latest_email(self, page: Any, address: str) -> str:
        """The newest message to ``address`` on the dev outbox page (subject and body),
        fetched with the browser context's cookies, as the page shows it."""
        response = page.context.request.get(f"{self.url}/dev/outbox/")
        assert response.ok, response.status
        for block in str(response.text()).split('<div class="mail">')[1:]:
            to = re.search(r'<span class="to">(.*?)</span>', block, re.S)
            subject = re.search(r'<span class="subject">(.*?)</span>', block, re.S)
            body = re.search(r'<pre class="body">(.*?)</pre>', block, re.S)
            assert to, block
            assert subject, block
            assert body, block
            if address in html.unescape(to.group(1)).split(", "):
                return html.unescape(f"{subject.group(1)}\n{body.group(1)}")
        raise AssertionError(f"no e-mail to {address} in the dev outbox")

    def latest_code(self, page: Any, address: str) -> str:
        """The one-time passcode in the newest message to ``address``."""
        found = re.search(r"\b([0-9]{6})\b", self.latest_email(page, address))
        assert found, f"no code in the newest e-mail to {address}"
        return found.group(1)

    def full_sign_in(self, page: Any, username: str) -> None:
        """Password, review, the e-mail code: at the home page."""
        self.sign_in(page, username)
        self.confirm_details(page)
        page.wait_for_url("**/sign-in/code/")
        page.fill("#id_code", self.latest_code(page, f"{username}@acme.example"))
        page.click("button:has-text('Verify')")
        page.wait_for_url(f"{self.url}/")


@dataclass
class _Process:
    site: Site
    process: subprocess.Popen[str]


def _environment(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "MFAKIT_"))}
    launched = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=125)
    env.update(
        {
            "DJANGO_DEBUG": "1",
            "DEMO_DATA_DIR": str(data_dir),
            "DEMO_FAST_HASHING": "1",
            "MFAKIT_LAUNCHED_AT": launched.date().isoformat(),
            "PYTHONUNBUFFERED": "1",
            **extra,
        }
    )
    return env


def _manage(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, f"manage.py {args[0]} failed:\n{done.stdout}\n{done.stderr}"


def _start(env: dict[str, str], log: Path) -> _Process:
    with log.open("w") as errors:
        process = subprocess.Popen(
            [sys.executable, str(SERVE)],
            cwd=PROJECT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        ready = selector.select(timeout=90)
    line = process.stdout.readline().strip() if ready else ""
    if not line.isdigit():
        process.kill()
        process.wait(timeout=10)
        raise AssertionError(f"the Django example did not start:\n{log.read_text()}")
    return _Process(Site(f"http://127.0.0.1:{line}"), process)


def _stop(running: _Process) -> None:
    running.process.terminate()
    try:
        running.process.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - a stuck server
        running.process.kill()
        running.process.wait(timeout=10)
    if running.process.stdout is not None:
        running.process.stdout.close()


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
    # Module scope, not session: Playwright's sync API keeps an event loop running in
    # this thread, and Django's ORM refuses to run under one (SynchronousOnlyOperation),
    # so it must be stopped before the modules that follow.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(chromium_path), headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, chromium_path: Path) -> Path:
    """A migrated, seeded data directory (``manage.py migrate`` and ``seed_demo``)."""
    path = tmp_path_factory.mktemp("django-example")
    env = _environment(path)
    _manage(env, "migrate", "--no-input")
    seed = ["seed_demo", "--password", PASSWORD]
    seed += [f"--user={name}" for name in USERS]
    seed += [f"--legacy-user={name}" for name in LEGACY_USERS]
    seed += [f"--staff-user={name}" for name in STAFF_USERS]
    _manage(env, *seed)
    return path


@pytest.fixture(scope="module")
def django_site(data_dir: Path) -> Iterator[Site]:
    running = _start(_environment(data_dir), data_dir / "server.log")
    try:
        yield running.site
    finally:
        _stop(running)


@pytest.fixture(scope="module")
def idle_site(data_dir: Path) -> Iterator[Site]:
    env = _environment(data_dir, MFAKIT_IDLE_SECONDS=str(IDLE_SECONDS))
    running = _start(env, data_dir / "idle-server.log")
    try:
        yield running.site
    finally:
        _stop(running)


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport=VIEWPORT)
    ctx.set_default_timeout(15_000)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: Any) -> Any:
    return context.new_page()


@pytest.fixture(scope="session")
def shot() -> Shot:
    SHOTS.mkdir(parents=True, exist_ok=True)

    def save(page: Any, name: str) -> None:
        page.screenshot(path=str(SHOTS / f"{name}.png"))

    return save
