"""The portal's URLs. The sign-in steps are exempt from MFARequiredMiddleware
(``mfa_exempt``); so are ``logout`` and the ``dev`` pages (``MFAKIT_EXEMPT_URL_NAMES``)."""

from django.urls import include, path

from . import views

dev_patterns = (
    [
        path("outbox/", views.dev_outbox_view, name="outbox"),
        path("clock/", views.dev_clock_view, name="clock"),
    ],
    "dev",
)

urlpatterns = [
    path("", views.home_view, name="home"),
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("sign-in/", views.step_view, name="mfakit-step"),
    path("sign-in/review/", views.review_view, name="sign-in-review"),
    path("sign-in/code/", views.code_view, name="sign-in-code"),
    path("sign-in/questions/", views.questions_view, name="sign-in-questions"),
    path("sign-in/grace/", views.grace_view, name="sign-in-grace"),
    path("sign-in/done/", views.done_view, name="sign-in-done"),
    path("profile/", views.profile_view, name="profile"),
    path("profile/email/", views.change_email_view, name="change-email"),
    path("profile/questions/", views.change_questions_view, name="change-questions"),
    path("admin-report/", views.report_view, name="report"),
    path("admin-report.csv", views.report_csv_view, name="report-csv"),
    path("dev/", include(dev_patterns)),
]
