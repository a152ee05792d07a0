"""The Flask example driven in headless chromium the way a person with a phone uses it.

The "phone" is made of tools nobody in this project wrote: the QR code is taken from the
page's ``<img>`` and decoded with zxing-cpp, and the authenticator app's codes come from
Debian's ``oathtool``. The server runs on the real clock with the real 30-second TOTP
period; SMS codes are read from the development outbox page, as a developer would.

Screenshots of the key pages go to ``build/screenshots/flask/`` (``scripts/update-screenshots.sh``
copies the curated set into the docs).
"""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
import time
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import pytest
from playwright.sync_api import expect

from .conftest import Server, Shot

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
PIN = "480213"
PERIOD = 30
LOCKED = "Too many attempts. Please wait before trying again, or contact your administrator."


# the person's tools ----------------------------------------------------------------------------
def oathtool(secret: str, at: int) -> str:
    """The code an authenticator app shows at Unix time ``at`` (Debian's oathtool)."""
    if shutil.which("oathtool") is None:
        pytest.skip("oathtool is not installed (apt-get install oathtool)")
    result = subprocess.run(
        ["oathtool", "--totp", "-b", secret, "--now", f"@{at}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    code = result.stdout.strip()
    assert re.fullmatch(r"[0-9]{6}", code), code
    return code


def scan_qr(page: Any) -> str:
    """Decode the QR code image of the page with zxing-cpp, like a phone's camera."""
    import zxingcpp
    from PIL import Image

    src = page.get_attribute("img#qr", "src")
    assert src is not None
    assert src.startswith("data:image/png;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
    found = zxingcpp.read_barcodes(image)
    assert len(found) == 1
    return str(found[0].text)


class App:
    """An authenticator app holding one key; it remembers the last step it showed."""

    def __init__(self, uri: str) -> None:
        parsed = urlparse(uri)
        assert parsed.scheme == "otpauth"
        assert parsed.netloc == "totp"
        self.label = unquote(parsed.path.lstrip("/"))
        query = parse_qs(parsed.query)
        self.secret = query["secret"][0]
        assert query.get("period", ["30"]) == ["30"]
        assert query.get("digits", ["6"]) == ["6"]
        self.used_step = -1

    def code_now(self) -> str:
        """The code of the current 30-second step."""
        step = int(time.time()) // PERIOD
        self.used_step = step
        return oathtool(self.secret, step * PERIOD)

    def fresh_code(self) -> str:
        """A code the server has not accepted yet, without waiting for the next step.

        The server accepts the steps now-1, now and now+1 (the ±1 window, SECURITY.md 2)
        and only steps after the last one accepted (SECURITY.md 3). Within a minute of the
        last use, the step after it is always one of those: ask oathtool for it.
        """
        now_step = int(time.time()) // PERIOD
        step = max(self.used_step + 1, now_step)
        assert step > self.used_step  # not a replay
        assert step - now_step <= 1  # inside the window
        self.used_step = step
        return oathtool(self.secret, step * PERIOD)


def sms_code(context: Any, server: Server, number: str) -> str:
    """The code of the latest text to ``number``, read on the development outbox page."""
    page = context.new_page()
    try:
        page.goto(f"{server.url}/dev/outbox")
        message = page.locator("article.message", has=page.locator(f".to:text-is('{number}')"))
        text = message.first.locator("pre.text").inner_text()
    finally:
        page.close()
    found = re.search(r"\b[0-9]{6}\b", text)
    assert found is not None, text
    return found.group()


# page steps ------------------------------------------------------------------------------------
def sign_up(page: Any, server: Server, username: str, *, shot: Shot | None = None) -> None:
    page.goto(f"{server.url}/signup")
    page.fill("#username", username)
    page.fill("#name", username.title())
    page.fill("#password", PASSWORD)
    page.fill("#password2", PASSWORD)
    page.click("button:text('Continue')")
    page.wait_for_url("**/mfa/choose")
    if shot:
        shot(page, "choose-method")


def sign_in(page: Any, server: Server, username: str, *, shot: Shot | None = None) -> None:
    page.goto(f"{server.url}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    if shot:
        shot(page, "sign-in")
    page.click("button:text('Continue')")
    page.wait_for_load_state()


def sign_out(page: Any) -> None:
    page.click("button:text('Sign out')")
    page.wait_for_url("**/login")


def enrol_app(page: Any, *, shot: Shot | None = None) -> App:
    """From the choose page: scan the QR code, check the manual key, confirm."""
    page.click("button:text('Use an authenticator app')")
    page.wait_for_selector("img#qr")
    if shot:
        shot(page, "qr-enrolment")
    app = App(scan_qr(page))
    assert page.inner_text("#manual-key").replace(" ", "") == app.secret
    page.fill("#code", app.code_now())
    page.click("button:text('Continue')")
    return app


def set_pin(page: Any, *, shot: Shot | None = None) -> None:
    page.wait_for_url("**/mfa/pin")
    page.fill("#pin", PIN)
    page.fill("#pin2", PIN)
    if shot:
        shot(page, "recovery-pin-create")
    page.click("button:text('Continue')")
    page.wait_for_url(re.compile(r".*/$"))
    assert page.is_visible("#signed-in")


def verify(page: Any, code: str) -> None:
    page.fill("#code", code)
    page.click("button:text('Verify')")
    page.wait_for_load_state()


def error_text(page: Any) -> str:
    return str(page.inner_text("p.error"))


# the tests -------------------------------------------------------------------------------------
def test_authenticator_app_replay_and_recovery_pin(
    context: Any, flask_server: Server, shot: Shot
) -> None:
    page = context.new_page()
    sign_up(page, flask_server, "priya", shot=shot)
    app = enrol_app(page, shot=shot)
    assert app.label == "Practice Suite:priya"
    set_pin(page, shot=shot)
    assert page.locator("li.method").all_inner_texts() == ["Authenticator app", "Recovery PIN"]
    sign_out(page)

    # Next sign-in: the code prompt, answered with the next step's code.
    sign_in(page, flask_server, "priya", shot=shot)
    page.wait_for_url("**/mfa/verify")
    shot(page, "code-prompt-app")
    reused = app.fresh_code()
    verify(page, reused)
    page.wait_for_url(re.compile(r".*/$"))
    assert page.is_visible("#signed-in")
    sign_out(page)

    # The same code again is refused (RFC 6238 5.2), without saying why.
    sign_in(page, flask_server, "priya")
    verify(page, reused)
    assert page.url.endswith("/mfa/verify")
    assert error_text(page) == "The code could not be verified. Check it and try again."

    # The phone is lost: "Use your recovery PIN", then set up a new phone.
    page.click("button:text('Use your recovery PIN')")
    page.wait_for_selector("h1:text('Enter your recovery PIN')")
    page.fill("#code", PIN)
    shot(page, "recovery-pin-prompt")
    page.click("button:text('Verify')")
    page.wait_for_url("**/mfa/choose")
    assert "recovery PIN" in page.inner_text("main")
    page.goto(f"{flask_server.url}/")  # recovery alone is not a complete sign-in
    page.wait_for_url("**/mfa/choose")

    new_app = enrol_app(page)
    page.wait_for_url(re.compile(r".*/$"))
    assert new_app.secret != app.secret
    methods = page.locator("li.method").all_inner_texts()
    assert methods == ["Recovery PIN", "Authenticator app"]  # the lost phone's key is gone
    sign_out(page)

    sign_in(page, flask_server, "priya")
    verify(page, app.code_now())  # the lost phone no longer works
    assert error_text(page) == "The code could not be verified. Check it and try again."
    verify(page, new_app.fresh_code())
    page.wait_for_url(re.compile(r".*/$"))


def test_sms_country_picker_other_refused_resend_and_sign_in(
    context: Any, flask_server: Server, shot: Shot
) -> None:
    page = context.new_page()
    sign_up(page, flask_server, "tom")
    page.click("a:text('Use SMS')")
    page.wait_for_url("**/mfa/sms")
    options = page.locator("#country option").all_inner_texts()
    assert options == ["Australia", "New Zealand", "United Kingdom", "Other"]

    page.select_option("#country", "Other")
    page.fill("#number", "0491 570 157")
    page.click("button:text('Continue')")
    assert error_text(page) == (
        "SMS codes are not available for that country. "
        "Choose another country or use an authenticator app instead."
    )
    assert page.is_visible("button:text('Use an authenticator app instead')")
    shot(page, "sms-enrolment")

    page.select_option("#country", "AU")
    page.fill("#number", "0491 570 157")  # spaces accepted
    page.click("button:text('Continue')")
    page.wait_for_url("**/mfa/sms/confirm")
    assert page.inner_text("#hint") == "+61 4•• ••• 157"
    first = sms_code(context, flask_server, "+61491570157")

    # "If the code expires you can select Resend": clickable after the cooldown (2 s here).
    resend = page.locator("button#resend")
    assert resend.is_disabled()
    shot(page, "sms-code-prompt")
    expect(resend).to_be_enabled(timeout=10_000)
    resend.click()
    page.wait_for_url("**/mfa/sms/confirm")
    assert "A new code is on its way" in page.inner_text("main")
    second = sms_code(context, flask_server, "+61491570157")
    if second != first:  # 1 in a million they are equal; then the old one is the new one
        verify(page, first)  # the previous code died with the resend (SECURITY.md 10)
        assert error_text(page) == "The code could not be verified. Check it and try again."
    verify(page, second)
    set_pin(page)
    assert "+61 4•• ••• 157" in page.inner_text("main")
    sign_out(page)

    sign_in(page, flask_server, "tom")
    page.wait_for_url("**/mfa/verify")
    assert page.inner_text("#hint") == "+61 4•• ••• 157"
    code = sms_code(context, flask_server, "+61491570157")
    verify(page, f"{code[:3]} {code[3:]}")
    page.wait_for_url(re.compile(r".*/$"))

    outbox = context.new_page()
    outbox.goto(f"{flask_server.url}/dev/outbox")
    assert outbox.locator("article.message").count() >= 3
    shot(outbox, "dev-outbox")


def test_admin_resets_mfa_and_unlocks(
    context: Any, browser: Any, flask_server: Server, shot: Shot
) -> None:
    accounts = flask_server.services.accounts
    admin = context.new_page()
    sign_up(admin, flask_server, "anna")
    enrol_app(admin)
    set_pin(admin)
    assert accounts.set_admin("anna")

    user_context = browser.new_context(viewport={"width": 1000, "height": 700})
    try:
        carol = user_context.new_page()
        sign_up(carol, flask_server, "carol")
        carol_app = enrol_app(carol)
        set_pin(carol)
        sign_out(carol)

        # Five wrong codes lock carol out; the right code is then refused too.
        sign_in(carol, flask_server, "carol")
        good = carol_app.fresh_code()
        wrong = "000000" if good != "000000" else "111111"
        for _ in range(5):
            verify(carol, wrong)
            assert error_text(carol) == "The code could not be verified. Check it and try again."
        sign_in(carol, flask_server, "carol")
        verify(carol, good)
        assert error_text(carol) == LOCKED

        admin.goto(f"{flask_server.url}/admin/")
        row = admin.locator("tr#user-carol")
        assert "locked" in row.inner_text()
        shot(admin, "admin")
        row.locator("button:text('Unlock')").click()
        admin.wait_for_url("**/admin/")
        assert "carol is unlocked." in admin.inner_text("main")
        assert "ok" in admin.locator("tr#user-carol").inner_text()

        sign_in(carol, flask_server, "carol")  # the locked challenge is gone: sign in again
        verify(carol, good)
        carol.wait_for_url(re.compile(r".*/$"))

        # "Reset MFA ... will then prompt the user to set up the MFA again"
        admin.locator("tr#user-carol").locator("button:text('Reset MFA')").click()
        admin.wait_for_url("**/admin/")
        assert "MFA reset for carol" in admin.inner_text("main")
        assert "none" in admin.locator("tr#user-carol").inner_text()

        carol.goto(f"{flask_server.url}/")  # her session ended with the reset
        carol.wait_for_url("**/login")
        sign_in(carol, flask_server, "carol")
        carol.wait_for_url("**/mfa/choose")  # enrol again
        enrol_app(carol)
        set_pin(carol)  # and a new recovery PIN: the old one went with the reset

        # A user without the role gets 403.
        response = carol.goto(f"{flask_server.url}/admin/")
        assert response is not None
        assert response.status == 403
    finally:
        user_context.close()


def test_protected_pages_need_the_second_factor(context: Any, flask_server: Server) -> None:
    page = context.new_page()
    for path in ("/", "/admin/", "/mfa/verify", "/mfa/pin"):
        page.goto(f"{flask_server.url}{path}")
        assert page.url.endswith("/login"), path  # nobody signed in

    sign_up(page, flask_server, "dave")  # password only: at the enrolment step
    for path in ("/", "/admin/", "/mfa/pin", "/mfa/verify"):
        page.goto(f"{flask_server.url}{path}")
        assert page.url.endswith("/mfa/choose"), path
    app = enrol_app(page)
    set_pin(page)
    sign_out(page)

    sign_in(page, flask_server, "dave")  # password only: at the code prompt
    for path in ("/", "/admin/", "/mfa/choose", "/mfa/pin"):
        page.goto(f"{flask_server.url}{path}")
        assert page.url.endswith("/mfa/verify"), path
    verify(page, app.fresh_code())
    page.wait_for_url(re.compile(r".*/$"))


def test_inactivity_timeout_ends_the_session(context: Any, idle_server: Server) -> None:
    page = context.new_page()
    sign_up(page, idle_server, "erin")
    enrol_app(page)
    set_pin(page)
    page.reload()
    assert page.is_visible("#signed-in")  # active: still signed in

    page.wait_for_timeout(5_000)  # the test server's timeout is 4 s (15 min by default)
    page.goto(f"{idle_server.url}/")
    page.wait_for_url("**/login")
    assert "signed out after a period of inactivity" in page.inner_text("main")
    page.goto(f"{idle_server.url}/")
    assert page.url.endswith("/login")  # the session is gone, not just this request


def test_csrf_token_is_required_on_every_form(context: Any, flask_server: Server) -> None:
    page = context.new_page()
    page.goto(f"{flask_server.url}/login")
    # The same form, submitted without its hidden token, as a forged cross-site post would.
    page.evaluate("document.querySelector('input[name=csrf_token]').remove()")
    page.fill("#username", "nobody")
    page.fill("#password", PASSWORD)
    with page.expect_response(re.compile(r".*/login$")) as caught:
        page.click("button:text('Continue')")
    assert caught.value.status == 400

    sign_up(page, flask_server, "fay")
    for path in ("/mfa/app", "/logout", "/admin/users/1/reset"):
        refused = context.request.post(f"{flask_server.url}{path}", form={"x": "1"})
        assert refused.status == 400, path
        forged = context.request.post(f"{flask_server.url}{path}", form={"csrf_token": "x" * 43})
        assert forged.status == 400, path
    page.goto(f"{flask_server.url}/")
    assert page.url.endswith("/mfa/choose")  # still signed in: the posts did nothing
