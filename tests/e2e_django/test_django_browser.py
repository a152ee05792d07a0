"""The Django example (the register deployment) driven in headless chromium.

A person signs in with a password, reviews their details, reads the one-time passcode in
their mailbox (the example's dev outbox page, in another tab) and types it; or answers
their secret questions when the code does not arrive. The server is a separate process on
the real clock; the grace-period test moves mfakit's clock with the dev clock page, the
inactivity test waits a few seconds on a server with a 3-second timeout.

Screenshots of the key pages go to ``build/screenshots/django/``; a curated copy is in
``docs/_static/screenshots/django/``.
"""

from __future__ import annotations

import csv
import io
import re
import time
from typing import Any

import pytest

from .conftest import IDLE_SECONDS, PASSWORD, Shot, Site

pytestmark = pytest.mark.browser

ANSWERS = {
    "In which city or town were you born?": "perth",  # answers are not case sensitive
    "What was the name of your first school?": "HALE SCHOOL",
    "What was your first job?": " Paper  round ",
}


def other_code(code: str) -> str:
    """A well-formed code that is not ``code``."""
    return f"{(int(code) + 1) % 1_000_000:06d}"


def at_code_page(site: Site, page: Any, username: str) -> None:
    site.sign_in(page, username)
    site.confirm_details(page)
    page.wait_for_url("**/sign-in/code/")


def test_email_code_at_sign_in(django_site: Site, page: Any, shot: Shot) -> None:
    django_site.sign_in(page, "e2e-code")
    page.wait_for_url("**/sign-in/review/")
    # "When you login, you will see your registered email address."
    assert page.inner_text("#registered-email") == "e2e-code@acme.example"
    shot(page, "review-details")
    django_site.confirm_details(page)

    page.wait_for_url("**/sign-in/code/")
    assert page.inner_text("#hint") == "e" + "•" * 7 + "@acme.example"  # masked
    shot(page, "email-code")
    mail = django_site.latest_email(page, "e2e-code@acme.example")
    # "Each OTP email will include the username in the subject line and the first name."
    assert "Register sign-in code for e2e-code" in mail
    assert "Hello E2E," in mail

    outbox = page.context.new_page()
    outbox.goto(f"{django_site.url}/dev/outbox/")
    shot(outbox, "dev-outbox")
    outbox.close()

    page.fill("#id_code", django_site.latest_code(page, "e2e-code@acme.example"))
    page.click("button:has-text('Verify')")
    page.wait_for_url(f"{django_site.url}/")
    assert page.inner_text("#factor") == "E-mail code"
    shot(page, "home")

    # The session cookie: HttpOnly and SameSite=Lax (Secure outside DEBUG, in settings).
    session = next(c for c in page.context.cookies() if c["name"] == "sessionid")
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Lax"


def test_a_used_code_does_not_work_twice(django_site: Site, page: Any) -> None:
    at_code_page(django_site, page, "e2e-plain")
    code = django_site.latest_code(page, "e2e-plain@acme.example")
    page.fill("#id_code", code)
    page.click("button:has-text('Verify')")
    page.wait_for_url(f"{django_site.url}/")
    page.click("header button:has-text('Sign out')")
    page.wait_for_url("**/login/")
    assert "You have signed out." in page.inner_text("main")

    at_code_page(django_site, page, "e2e-plain")
    page.fill("#id_code", code)  # the previous sign-in's code
    page.click("button:has-text('Verify')")
    assert "The code could not be verified" in page.inner_text(".errorlist")
    assert page.url.endswith("/sign-in/code/")


def test_secret_questions_when_the_code_does_not_arrive(
    django_site: Site, page: Any, shot: Shot
) -> None:
    at_code_page(django_site, page, "e2e-fallback")
    page.click("button:has-text('answer my secret questions')")
    page.wait_for_url("**/sign-in/questions/")
    shot(page, "secret-questions")

    labels = page.locator("form label").all_inner_texts()
    assert sorted(labels) == sorted(ANSWERS)
    # One wrong answer: refused, without saying which.
    for label in labels:
        page.get_by_label(label).fill(ANSWERS[label])
    page.get_by_label(labels[0]).fill("wrong answer")
    page.click("button:has-text('Continue')")
    assert "Your answers could not be verified" in page.inner_text(".errorlist")

    for label in labels:
        page.get_by_label(label).fill(ANSWERS[label])
    page.click("button:has-text('Continue')")
    page.wait_for_url(f"{django_site.url}/")
    assert page.inner_text("#factor") == "Secret questions"


def test_repeated_wrong_codes_lock_the_user(django_site: Site, browser: Any, shot: Shot) -> None:
    context = browser.new_context(viewport={"width": 1000, "height": 700})
    try:
        page = context.new_page()
        at_code_page(django_site, page, "e2e-lock")
        right = django_site.latest_code(page, "e2e-lock@acme.example")
        for attempt in range(5):  # Lockout.ism(): the fifth failure suspends
            page.fill("#id_code", other_code(right))
            page.click("button:has-text('Verify')")
            page.wait_for_load_state()
            if attempt < 4:
                assert "The code could not be verified" in page.inner_text(".errorlist")
        assert "Too many attempts" in page.inner_text("#locked")
        assert not page.is_visible("#id_code")
        shot(page, "locked")

        # A new sign-in is locked too, right code or not: no new code is sent.
        sent = django_site.latest_email(page, "e2e-lock@acme.example")
        at_code_page(django_site, page, "e2e-lock")
        assert "Too many attempts" in page.inner_text(".messages")
        assert not page.is_visible("#id_code")
        assert django_site.latest_email(page, "e2e-lock@acme.example") == sent
    finally:
        context.close()

    # An account system administrator unlocks from the user report.
    admin = browser.new_context(viewport={"width": 1000, "height": 700})
    try:
        page = admin.new_page()
        django_site.full_sign_in(page, "e2e-admin")
        page.goto(f"{django_site.url}/admin-report/")
        row = page.locator("#report tr", has_text="e2e-lock@acme.example")
        assert "suspended" in row.inner_text()
        row.locator("button:has-text('Unlock')").click()
        page.wait_for_url("**/admin-report/")
        assert "active" in page.locator("#report tr", has_text="e2e-lock@acme.example").inner_text()
    finally:
        admin.close()


def test_grace_period_before_and_after_the_deadline(
    django_site: Site, page: Any, shot: Shot
) -> None:
    page.goto(f"{django_site.url}/dev/clock/")
    page.click("button:has-text('The day before the deadline')")
    assert page.inner_text("#phase") == "grace period: MFA optional"
    shot(page, "dev-clock")
    try:
        # Before the deadline: review, then "set up now / later", no code.
        django_site.sign_in(page, "e2e-grace")
        django_site.confirm_details(page)
        page.wait_for_url("**/sign-in/grace/")
        shot(page, "grace-period-choice")
        page.click("button:has-text('Later')")
        page.wait_for_url(f"{django_site.url}/")
        assert page.inner_text("#factor") == "Not used"
        assert "Optional until" in page.inner_text("main")
        page.click("header button:has-text('Sign out')")

        # "Set up now": the e-mail code follows at once, and at every sign-in afterwards.
        django_site.sign_in(page, "e2e-grace")
        django_site.confirm_details(page)
        page.wait_for_url("**/sign-in/grace/")
        page.click("button:has-text('Set up now')")
        page.wait_for_url("**/sign-in/code/")
        page.fill("#id_code", django_site.latest_code(page, "e2e-grace@acme.example"))
        page.click("button:has-text('Verify')")
        page.wait_for_url(f"{django_site.url}/")
        assert page.inner_text("#factor") == "E-mail code"
        page.click("header button:has-text('Sign out')")
        django_site.sign_in(page, "e2e-grace")
        django_site.confirm_details(page)
        page.wait_for_url("**/sign-in/code/")

        # After the deadline: a user who never opted in gets the code, without a choice.
        page.click("header button:has-text('Sign out')")
        page.goto(f"{django_site.url}/dev/clock/")
        page.click("button:has-text('The day after the deadline')")
        assert page.inner_text("#phase") == "MFA required"
        django_site.sign_in(page, "e2e-late")
        django_site.confirm_details(page)
        page.wait_for_url("**/sign-in/code/")
    finally:
        page.goto(f"{django_site.url}/dev/clock/")
        page.click("button:has-text('Real time')")


def test_tightened_rules_prompt_an_update_of_the_questions(
    django_site: Site, page: Any, shot: Shot
) -> None:
    # e2e-legacy's questions were imported under the old rules (an answer of 2 letters).
    django_site.sign_in(page, "e2e-legacy")
    django_site.confirm_details(page)
    page.wait_for_url("**/sign-in/code/")
    page.fill("#id_code", django_site.latest_code(page, "e2e-legacy@acme.example"))
    page.click("button:has-text('Verify')")
    page.wait_for_url("**/profile/questions/")
    assert page.is_visible("#must-update")
    shot(page, "must-update-questions")

    def choose(answers: list[str], password: str = PASSWORD) -> None:
        for number, (question, answer) in enumerate(
            zip(("birth-city", "first-job", "first-car"), answers, strict=True), start=1
        ):
            page.select_option(f"#id_question_{number}", question)
            page.fill(f"#id_answer_{number}", answer)
        page.fill("#id_password", password)
        page.click("button:has-text('Save')")

    choose(["Hobart", "Tutor", "VW"])  # the old answers break the new rules
    assert "Each answer needs at least 4 characters." in page.inner_text(".errorlist")
    choose(["Hobart", "Maths tutor", "VW Beetle"])
    page.wait_for_url("**/profile/")
    assert "were saved" in page.inner_text(".messages")
    assert "do not meet the current requirements" not in page.inner_text("main")


def test_password_is_asked_again_to_change_email_or_questions(
    django_site: Site, page: Any, shot: Shot
) -> None:
    django_site.sign_in(page, "e2e-edit")
    page.wait_for_url("**/sign-in/review/")
    page.click("button:has-text('Update my details')")  # review, then the profile
    page.wait_for_url("**/sign-in/code/")
    page.fill("#id_code", django_site.latest_code(page, "e2e-edit@acme.example"))
    page.click("button:has-text('Verify')")
    page.wait_for_url("**/profile/")

    page.click("a:has-text('Edit')")
    page.wait_for_url("**/profile/email/")
    page.fill("#id_email", "e2e-edit.new@acme.example")
    page.fill("#id_password", "not my password")
    page.click("button:has-text('Save')")
    assert "That password is not correct." in page.inner_text("main")
    shot(page, "change-email-password")
    page.goto(f"{django_site.url}/profile/")
    assert page.inner_text("#email") == "e2e-edit@acme.example"  # unchanged

    page.click("a:has-text('Edit')")
    page.fill("#id_email", "e2e-edit.new@acme.example")
    page.fill("#id_password", PASSWORD)
    page.click("button:has-text('Save')")
    page.wait_for_url("**/profile/")
    assert page.inner_text("#email") == "e2e-edit.new@acme.example"
    # The old address is told (SECURITY.md 30).
    notice = django_site.latest_email(page, "e2e-edit@acme.example")
    assert "Your Register e-mail address was changed" in notice

    # Secret questions: the same password check.
    page.click("a:has-text('Change secret questions and answers')")
    for number, (question, answer) in enumerate(
        (("first-school", "Hale School"), ("first-car", "Golf GTI"), ("parent-middle", "Anne")),
        start=1,
    ):
        page.select_option(f"#id_question_{number}", question)
        page.fill(f"#id_answer_{number}", answer)
    page.fill("#id_password", "not my password")
    page.click("button:has-text('Save')")
    assert "That password is not correct." in page.inner_text("main")
    page.fill("#id_password", PASSWORD)
    page.click("button:has-text('Save')")
    page.wait_for_url("**/profile/")
    assert page.locator("#questions li").all_inner_texts() == [
        "What was the name of your first school?",
        "What was the make and model of your first car?",
        "What is your oldest parent's middle name?",
    ]

    # The next code goes to the new address.
    page.click("header button:has-text('Sign out')")
    at_code_page(django_site, page, "e2e-edit")
    assert page.inner_text("#hint").endswith("@acme.example")
    page.fill("#id_code", django_site.latest_code(page, "e2e-edit.new@acme.example"))
    page.click("button:has-text('Verify')")
    page.wait_for_url(f"{django_site.url}/")


def test_user_report_is_for_staff_only(django_site: Site, browser: Any, shot: Shot) -> None:
    user = browser.new_context(viewport={"width": 1000, "height": 700})
    try:
        page = user.new_page()
        django_site.full_sign_in(page, "e2e-pending")
        assert not page.is_visible("a:has-text('User report')")
        response = page.goto(f"{django_site.url}/admin-report/")
        assert response is not None
        assert response.status == 403
        response = page.goto(f"{django_site.url}/admin-report.csv")
        assert response is not None
        assert response.status == 403
    finally:
        user.close()

    admin = browser.new_context(viewport={"width": 1000, "height": 700}, accept_downloads=True)
    try:
        page = admin.new_page()
        django_site.full_sign_in(page, "e2e-admin")
        page.click("a:has-text('User report')")
        page.wait_for_url("**/admin-report/")
        rows = page.locator("#report tbody tr").all_inner_texts()
        assert any("lee@acme.example" in row and "must update" in row for row in rows)
        assert any("accounts@acme.example" in row for row in rows)  # kim's shared mailbox
        shot(page, "admin-report")

        with page.expect_download() as download_info:
            page.click("#csv")
        path = download_info.value.path()
        with open(path, encoding="utf-8", newline="") as handle:
            header, *lines = csv.reader(io.StringIO(handle.read()))
        assert header[:4] == ["subject_id", "username", "email", "display_name"]
        assert ["lee", "lee@acme.example"] in [line[1:3] for line in lines]
    finally:
        admin.close()


def test_password_alone_never_reaches_a_protected_page(django_site: Site, page: Any) -> None:
    django_site.sign_in(page, "e2e-pending")
    page.wait_for_url("**/sign-in/review/")
    for path in ("/", "/profile/", "/profile/email/", "/admin-report/", "/sign-in/done/"):
        page.goto(f"{django_site.url}{path}")
        assert page.url.startswith(f"{django_site.url}/sign-in/review/"), path

    django_site.confirm_details(page)
    page.wait_for_url("**/sign-in/code/")
    for path in ("/", "/profile/", "/profile/questions/", "/admin-report.csv"):
        response = page.goto(f"{django_site.url}{path}")
        assert page.url.startswith(f"{django_site.url}/sign-in/code/"), path
        assert response is not None
        assert response.status == 200
        assert "Welcome" not in page.content()

    # A form post without the CSRF token is refused by Django's middleware.
    response = page.request.post(f"{django_site.url}/sign-in/code/", form={"code": "123456"})
    assert response.status == 403


def test_session_ends_after_inactivity(idle_site: Site, page: Any, shot: Shot) -> None:
    idle_site.full_sign_in(page, "e2e-idle")
    page.goto(f"{idle_site.url}/profile/")  # active: still signed in
    assert page.url == f"{idle_site.url}/profile/"

    time.sleep(IDLE_SECONDS + 1.5)  # the one wait of the suite: the real idle timeout
    page.goto(f"{idle_site.url}/profile/")
    assert re.match(rf"{re.escape(idle_site.url)}/login/\?next=", page.url)
    assert "Your session ended after a period of inactivity" in page.inner_text(".messages")
    shot(page, "session-ended")

    page.goto(f"{idle_site.url}/")  # and it stays ended
    assert "/login/" in page.url
