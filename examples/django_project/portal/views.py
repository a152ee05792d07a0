"""The register's pages.

Sign-in: the password (Django's ``AuthenticationForm``), then the steps of mfakit's
``SignInFlow``: review your details; the e-mail code, or the secret questions when it
does not arrive; during the grace period a "set up now or later" choice; afterwards the
"update your secret questions" prompt when the rules have tightened. The step views are
``mfa_exempt``: everything else is out of reach until the flow is complete
(``MFARequiredMiddleware``).

Every mfakit error has a ``public_message`` safe to show; nothing here shows a code, an
answer or a password.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from mfakit import (
    Context,
    FlowError,
    FlowState,
    FlowStep,
    InvalidInput,
    LockedOut,
    MFAError,
    NotAuthorized,
    SendRefused,
    Subject,
    VerificationFailed,
)
from mfakit.contrib.django.decorators import mfa_exempt
from mfakit.contrib.django.middleware import (
    SessionKeys,
    current_state,
    end_sign_in,
    save_step,
    start_sign_in,
)
from mfakit.factors import SecretQuestions

from .clock import CLOCK
from .forms import AnswersForm, CodeForm, EmailChangeForm, QuestionsForm
from .mfa import actor_for, get_flow, get_mfa, policy, subject_for
from .models import Profile

NEXT_KEY = "portal.next"
PROMPTS_KEY = "portal.prompts"
HINT_KEY = "portal.hint"
GRACE_SEEN_KEY = "portal.grace_seen"

ENDED_MESSAGES = {
    "idle": "Your session ended after a period of inactivity. Please sign in again.",
    "lifetime": "Your session has reached its maximum length. Please sign in again.",
    "expired": "Your sign-in took too long. Please sign in again.",
    "invalid": "Your sign-in could not be continued. Please sign in again.",
    "signed_out": "You have signed out.",
}


def site_context(request: HttpRequest) -> dict[str, Any]:
    """Template context for every page: ``signed_in`` only once the sign-in is complete
    (the navigation is hidden while a step is pending)."""
    state = current_state(request) if hasattr(request, "user") else None
    return {
        "dev_tools": settings.MFAKIT_DEMO_DEV_TOOLS,
        "signed_in": state is not None and state.complete,
    }


# --- helpers ------------------------------------------------------------------------------
def _user(request: HttpRequest) -> AbstractBaseUser:
    user = request.user
    if not isinstance(user, AbstractBaseUser):  # pragma: no cover - views require a user
        raise PermissionDenied
    return user


def _binding(request: HttpRequest) -> str:
    return str(request.session.get(SessionKeys.BINDING, ""))


def _token(request: HttpRequest) -> str:
    return str(request.session.get(SessionKeys.FLOW, ""))


def _restart(request: HttpRequest) -> HttpResponse:
    """Any FlowError: sign out and start again at the password (docs/flow.md)."""
    end_sign_in(request, "invalid" if request.user.is_authenticated else None)
    return redirect("login")


def _pending(request: HttpRequest, *steps: FlowStep) -> tuple[FlowState | None, HttpResponse]:
    """The flow state if it is at one of ``steps``; otherwise where to go instead."""
    state = current_state(request)
    if state is None:
        return None, _restart(request)
    if state.step not in steps:
        return None, redirect("mfakit-step")
    return state, HttpResponse()


def _safe_next(request: HttpRequest, value: object) -> str | None:
    if isinstance(value, str) and url_has_allowed_host_and_scheme(
        value, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return value
    return None


def _locked_now(subject: Subject) -> bool:
    """Did the attempt just made lock the user? (The attempt that trips the lock fails
    as a wrong code; the lock shows from the next one. Say so at once.)"""
    lock = get_mfa().lock_state(subject)
    return lock.suspended or (lock.locked_until is not None and lock.locked_until > CLOCK.now())


def _open_email_challenge(request: HttpRequest, subject: Subject, token: str) -> str:
    """Send the e-mail code for this sign-in; returns the token (new one if sent)."""
    try:
        token, challenge = get_flow().challenge(subject, token, "email", binding=_binding(request))
    except (LockedOut, SendRefused) as exc:
        messages.error(request, exc.public_message)
        return token
    except MFAError as exc:  # DeliveryError: nothing is waiting for a code
        messages.error(request, exc.public_message)
        return token
    request.session[HINT_KEY] = challenge.destination_hint
    request.session.pop(PROMPTS_KEY, None)
    return token


# --- password -------------------------------------------------------------------------------
@mfa_exempt
def login_view(request: HttpRequest) -> HttpResponse:
    ended = request.session.pop(SessionKeys.ENDED, None)
    if ended in ENDED_MESSAGES:
        messages.info(request, ENDED_MESSAGES[ended])
    form = AuthenticationForm(request, data=request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.get_user()
        state = start_sign_in(request, user)
        target = _safe_next(request, request.POST.get("next") or request.GET.get("next"))
        if target:
            request.session[NEXT_KEY] = target
        return redirect("mfakit-step" if not state.complete else "sign-in-done")
    return render(request, "portal/login.html", {"form": form, "next": request.GET.get("next")})


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    end_sign_in(request, "signed_out")
    return redirect("login")


# --- the flow's steps -------------------------------------------------------------------------
@mfa_exempt
def step_view(request: HttpRequest) -> HttpResponse:
    """Where a pending sign-in goes: the page of the step the token names."""
    state = current_state(request)
    if state is None:
        return _restart(request)
    if state.step is FlowStep.REVIEW:
        return redirect("sign-in-review")
    if state.step is FlowStep.CHALLENGE:
        if state.challenge_id and request.session.get(PROMPTS_KEY):
            return redirect("sign-in-questions")
        return redirect("sign-in-code")
    if state.step is FlowStep.COMPLETE:
        return redirect("sign-in-done")
    # ENROLL: the register has nothing to enrol; it happens only without an address.
    return render(request, "portal/no_email.html", status=403)


@mfa_exempt
def review_view(request: HttpRequest) -> HttpResponse:
    """ "Before MFA is applied, users will be prompted to review ... their details." """
    state, elsewhere = _pending(request, FlowStep.REVIEW)
    if state is None:
        return elsewhere
    user = _user(request)
    subject = subject_for(user)
    mfa = get_mfa()
    if request.method == "POST":
        try:
            token, state = get_flow().review_done(
                subject, _token(request), binding=_binding(request)
            )
        except FlowError:
            return _restart(request)
        if state.step is FlowStep.CHALLENGE:
            # "When you log in, the register will send a one-time passcode."
            token = _open_email_challenge(request, subject, token)
        save_step(request, token, state)
        if request.POST.get("action") == "update":
            request.session[NEXT_KEY] = reverse("profile")
        return redirect("mfakit-step")
    decision = mfa.evaluate(subject)
    return render(
        request,
        "portal/review.html",
        {
            "subject": subject,
            "questions": mfa.secret_questions(subject),
            "grace_until": decision.grace_until,
        },
    )


@mfa_exempt
def code_view(request: HttpRequest) -> HttpResponse:
    """The e-mail code, with "send a new code" and "answer your secret questions"."""
    state, elsewhere = _pending(request, FlowStep.CHALLENGE)
    if state is None:
        return elsewhere
    subject = subject_for(_user(request))
    flow, binding, token = get_flow(), _binding(request), _token(request)
    action = request.POST.get("action", "verify")
    form = CodeForm(request.POST if request.method == "POST" and action == "verify" else None)
    locked = ""  # the lockout message, once locked
    if request.method == "POST":
        try:
            if action == "questions":
                token, challenge = flow.challenge(
                    subject, token, "secret_questions", binding=binding
                )
                request.session[PROMPTS_KEY] = list(challenge.prompts)
                save_step(request, token, state)
                return redirect("sign-in-questions")
            if action == "send" or (action == "resend" and not state.challenge_id):
                token = _open_email_challenge(request, subject, token)
                save_step(request, token, state)
                return redirect("sign-in-code")
            if action == "resend" and state.challenge_id:
                get_mfa().resend(subject, state.challenge_id)
                messages.success(
                    request, "A new code is on its way. The previous one no longer works."
                )
                return redirect("sign-in-code")
            if form.is_valid():
                token, state = flow.verify(
                    subject, token, form.cleaned_data["code"], binding=binding
                )
                save_step(request, token, state)
                return redirect("mfakit-step")
        except FlowError:
            return _restart(request)
        except LockedOut as exc:
            locked = exc.public_message
        except VerificationFailed as exc:  # wrong, expired or used code
            if _locked_now(subject):
                locked = LockedOut.public_message
            else:
                form.add_error(None, exc.public_message)
        except MFAError as exc:  # SendRefused (too soon, too many), DeliveryError
            messages.error(request, exc.public_message)
    decision = get_mfa().evaluate(subject)
    return render(
        request,
        "portal/code.html",
        {
            "form": form,
            "hint": request.session.get(HINT_KEY) if state.challenge_id else None,
            "minutes": int(get_mfa().factor("email").code_ttl.total_seconds() // 60),  # type: ignore[attr-defined]
            "fallback": "secret_questions" in decision.fallbacks,
            "locked": locked,
        },
    )


@mfa_exempt
def questions_view(request: HttpRequest) -> HttpResponse:
    """ "If you do not receive the OTP, you can verify your identity using your secret
    questions." """
    state, elsewhere = _pending(request, FlowStep.CHALLENGE)
    if state is None:
        return elsewhere
    prompts = request.session.get(PROMPTS_KEY) or []
    if not state.challenge_id or not prompts:
        return redirect("sign-in-code")
    subject = subject_for(_user(request))
    mfa = get_mfa()
    asked = [(q, mfa.question_text(q)) for q in prompts]
    form = AnswersForm(asked, request.POST if request.method == "POST" else None)
    locked = ""  # the lockout message, once locked
    if request.method == "POST":
        try:
            if request.POST.get("action") == "email":
                token = _open_email_challenge(request, subject, _token(request))
                save_step(request, token, state)
                return redirect("sign-in-code")
            if form.is_valid():
                token, state = get_flow().answer(
                    subject, _token(request), form.answers(), binding=_binding(request)
                )
                request.session.pop(PROMPTS_KEY, None)
                save_step(request, token, state)
                return redirect("mfakit-step")
        except FlowError:
            return _restart(request)
        except LockedOut as exc:
            locked = exc.public_message
        except VerificationFailed:
            if _locked_now(subject):
                locked = LockedOut.public_message
            else:
                # Never which answer was wrong (SECURITY.md 36).
                form.add_error(
                    None, "Your answers could not be verified. Check them and try again."
                )
        except MFAError as exc:
            messages.error(request, exc.public_message)
    return render(request, "portal/questions.html", {"form": form, "locked": locked})


@login_required
def done_view(request: HttpRequest) -> HttpResponse:
    """The sign-in is complete (the middleware let us in): the grace-period choice, the
    must-update prompt, then where the user was going."""
    user = _user(request)
    subject = subject_for(user)
    mfa = get_mfa()
    decision = mfa.evaluate(subject)
    if decision.optional and decision.grace_until and not request.session.get(GRACE_SEEN_KEY):
        return redirect("sign-in-grace")
    if mfa.questions_need_update(subject):
        # "Existing users who don't meet the new requirements will be prompted to change
        # their secret questions and answers."
        return redirect("change-questions")
    target = _safe_next(request, request.session.pop(NEXT_KEY, None))
    return redirect(target or "home")


@login_required
def grace_view(request: HttpRequest) -> HttpResponse:
    """ "Existing accounts will have a 3-month grace period to opt-in." """
    user = _user(request)
    subject = subject_for(user)
    decision = get_mfa().evaluate(subject)
    if not decision.optional:
        return redirect("sign-in-done")
    if request.method == "POST":
        request.session[GRACE_SEEN_KEY] = True
        if request.POST.get("choice") == "now":
            Profile.objects.filter(user=user).update(mfa_opted_in=True)
            subject = subject_for(user)
            flow, binding = get_flow(), _binding(request)
            # Opting in counts from now: this sign-in continues with the e-mail code. The
            # details were reviewed a moment ago in this sign-in, so that step is done.
            token, state = flow.start(subject, binding=binding)
            if state.step is FlowStep.REVIEW:
                token, state = flow.review_done(subject, token, binding=binding)
            if state.step is FlowStep.CHALLENGE:
                token = _open_email_challenge(request, subject, token)
            save_step(request, token, state)
            messages.success(request, "Multi-factor authentication is now on for your account.")
            return redirect("mfakit-step")
        return redirect("sign-in-done")
    return render(request, "portal/grace.html", {"grace_until": decision.grace_until})


# --- signed in ----------------------------------------------------------------------------------
@login_required
def home_view(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    subject = subject_for(user)
    decision = get_mfa().evaluate(subject)
    state = current_state(request)
    return render(
        request,
        "portal/home.html",
        {
            "subject": subject,
            "decision": decision,
            "state": state,
            "staff": getattr(user, "is_staff", False),
        },
    )


@login_required
def profile_view(request: HttpRequest) -> HttpResponse:
    """ "Most users will see an option to manage your user profile." """
    subject = subject_for(_user(request))
    mfa = get_mfa()
    return render(
        request,
        "portal/profile.html",
        {
            "subject": subject,
            "questions": mfa.secret_questions(subject),
            "must_update": mfa.questions_need_update(subject),
        },
    )


def _step_up(request: HttpRequest, subject: Subject, action: str) -> bool:
    """The password was just re-entered; does the policy's step-up accept it?

    The register asks for the password only (``step_up_factor=False``); a policy that
    also wants a recent second factor gets ``mfa_verified_at`` from this sign-in.
    """
    state = current_state(request)
    now = CLOCK.now()
    decision = get_mfa().evaluate(
        subject,
        Context(
            now=now,
            action=action,
            password_verified_at=now,
            mfa_verified_at=state.mfa_at if state else None,
        ),
    )
    return decision.step_up_satisfied


@login_required
def change_email_view(request: HttpRequest) -> HttpResponse:
    """ "Select Edit, enter your password, update the email address, select Save." """
    user = _user(request)
    form = EmailChangeForm(user, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        subject = subject_for(user)
        if not _step_up(request, subject, "change_email"):
            form.add_error(None, "Please sign in again before changing your e-mail address.")
        else:
            old = getattr(user, "email", "")
            user.email = form.cleaned_data["email"]  # type: ignore[attr-defined]
            user.save(update_fields=["email"])
            if old:
                # A changed address is a changed second factor: tell the old one (SECURITY.md 30).
                mail.send_mail(
                    "Your Register e-mail address was changed",
                    f"Hello,\n\nThe e-mail address of the Register account {user.get_username()} "
                    "was changed. If you did not do this, contact your account administrator.\n",
                    settings.DEFAULT_FROM_EMAIL,
                    [old],
                )
            messages.success(request, "Your e-mail address was saved.")
            return redirect("profile")
    return render(request, "portal/change_email.html", {"form": form})


@login_required
def change_questions_view(request: HttpRequest) -> HttpResponse:
    """ "Select Change secret questions and answers, enter your password, update your
    secret questions and answers, select Save." """
    user = _user(request)
    subject = subject_for(user)
    mfa = get_mfa()
    form = QuestionsForm(user, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        if not _step_up(request, subject, "change_questions"):
            form.add_error(None, "Please sign in again before changing your secret questions.")
        else:
            try:
                mfa.enroll(subject, SecretQuestions.setup(form.answers()))
            except InvalidInput as exc:
                # The message names the rule that failed, never the answer.
                form.add_error(None, f"{str(exc)[:1].upper()}{str(exc)[1:]}.")
            else:
                messages.success(request, "Your secret questions and answers were saved.")
                target = _safe_next(request, request.session.pop(NEXT_KEY, None))
                return redirect(target or "profile")
    return render(
        request,
        "portal/change_questions.html",
        {"form": form, "must_update": mfa.questions_need_update(subject)},
    )


# --- account system administrators --------------------------------------------------------------
def _admin_rows(request: HttpRequest) -> tuple[list[Any], list[Subject]]:
    user = _user(request)
    if not getattr(user, "is_staff", False):
        raise PermissionDenied
    users = get_user_model().objects.filter(is_active=True).order_by("username")
    subjects = [subject_for(u) for u in users]
    try:
        return list(get_mfa().report(actor_for(user), None, subjects)), subjects
    except NotAuthorized:
        raise PermissionDenied from None


@login_required
def report_view(request: HttpRequest) -> HttpResponse:
    """ "Use the user management report to review users in your account and their
    registered email address." Staff only."""
    rows, subjects = _admin_rows(request)
    if request.method == "POST":
        by_id = {s.id: s for s in subjects}
        target = by_id.get(request.POST.get("subject_id", ""))
        if target is not None:
            try:
                get_mfa().admin_unlock(actor_for(_user(request)), target)
            except NotAuthorized:
                raise PermissionDenied from None
            messages.success(request, f"{target.username} was unlocked.")
        return redirect("report")
    return render(request, "portal/report.html", {"rows": rows})


@login_required
def report_csv_view(request: HttpRequest) -> HttpResponse:
    """The same report as CSV, safe to open in a spreadsheet (formula cells quoted)."""
    user = _user(request)
    if not getattr(user, "is_staff", False):
        raise PermissionDenied
    users = get_user_model().objects.filter(is_active=True).order_by("username")
    try:
        text = get_mfa().report_csv(actor_for(user), None, [subject_for(u) for u in users])
    except NotAuthorized:
        raise PermissionDenied from None
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="user-report.csv"'
    return response


# --- development only ---------------------------------------------------------------------
def _dev_only() -> None:
    if not settings.MFAKIT_DEMO_DEV_TOOLS:
        raise Http404


def dev_outbox_view(request: HttpRequest) -> HttpResponse:
    """The e-mails the locmem backend has sent, newest first. 404 unless dev tools are on:
    it shows codes."""
    _dev_only()
    sent = list(reversed(getattr(mail, "outbox", [])))
    return render(request, "portal/outbox.html", {"sent": sent})


def dev_clock_view(request: HttpRequest) -> HttpResponseBase:
    """Move mfakit's clock to before or after the end of the grace period."""
    _dev_only()
    deadline = policy().enforce_from
    assert deadline is not None  # Policy.register always sets it
    if request.method == "POST":
        choice = request.POST.get("when")
        if choice == "before":
            CLOCK.set_time(deadline - dt.timedelta(days=1))
        elif choice == "after":
            CLOCK.set_time(deadline + dt.timedelta(days=1))
        else:
            CLOCK.set_time(None)
        return redirect("dev:clock")
    return render(
        request,
        "portal/clock.html",
        {
            "now": CLOCK.now(),
            "real": CLOCK.real_now(),
            "shifted": CLOCK.offset != dt.timedelta(0),
            "launched_at": settings.MFAKIT_LAUNCHED_AT,
            "deadline": deadline,
            "in_grace": CLOCK.now() < deadline,
        },
    )
