"""View decorators: guard one view without the middleware, or exempt one from it.

``mfa_required`` is :func:`django.contrib.auth.decorators.login_required` plus the second
step: an anonymous user goes to ``LOGIN_URL``; a signed-in user whose sign-in is still
pending goes to the MFA step page; a session that is invalid, idle or too old is signed
out (the same check as :class:`~mfakit.contrib.django.middleware.MFARequiredMiddleware`,
SECURITY.md 32 and 34). For class-based views, decorate ``dispatch``::

    @method_decorator(mfa_required, name="dispatch")
    class AccountView(TemplateView): ...

``mfa_exempt`` marks a view the middleware lets a pending user reach (the pages of the
sign-in steps themselves, a logout view, a help page).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django.shortcuts import resolve_url

from mfakit.contrib.django.middleware import EXEMPT_ATTRIBUTE, check_request

__all__ = ["mfa_exempt", "mfa_required"]

P = ParamSpec("P")
V = TypeVar("V", bound=Callable[..., HttpResponseBase])


def mfa_required(
    view: Callable[Concatenate[HttpRequest, P], HttpResponseBase],
) -> Callable[Concatenate[HttpRequest, P], HttpResponseBase]:
    """Serve ``view`` only to a user signed in with every step the policy asks for.

    Args:
        view: A function view (its first argument is the request).

    Returns:
        The guarded view.
    """

    @functools.wraps(view)
    def guarded(request: HttpRequest, /, *args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
        if not request.user.is_authenticated:
            # Imported here: django.contrib.auth.views needs the app registry ready.
            from django.contrib.auth.views import redirect_to_login

            return redirect_to_login(request.get_full_path(), resolve_url(settings.LOGIN_URL))
        refused = check_request(request, exempt=False)
        if refused is not None:
            return refused
        return view(request, *args, **kwargs)

    return guarded


def mfa_exempt(view: V) -> V:
    """Let a pending sign-in reach ``view`` through the middleware (it still checks that
    the session is valid). Returns ``view`` itself, marked."""
    setattr(view, EXEMPT_ATTRIBUTE, True)
    return view
