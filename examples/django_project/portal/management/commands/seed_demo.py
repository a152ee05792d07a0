"""``python manage.py seed_demo``: the register's demo users.

Creates (or resets) these users, all with the same password:

* ``sam`` (Sam Lee): secret questions under the current rules;
* ``kim`` (Kim Ng): the same, on a shared mailbox;
* ``lee`` (Lee Wu): questions imported under the old rules, so the sign-in ends with the
  "update your secret questions" prompt;
* ``rita`` (Rita Admin): staff, an account system administrator (the user report).

Current-rules answers: birth-city "Perth", first-school "Hale School", first-job
"Paper round". ``--user NAME`` (repeatable) adds more users like ``sam``;
``--legacy-user`` like ``lee``; ``--staff-user`` like ``rita``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from mfakit.factors import SecretQuestions
from mfakit.factors.secret_questions import normalize_answer

from ...mfa import OLD_RULES, get_mfa, subject_for
from ...models import Profile

ANSWERS = {"birth-city": "Perth", "first-school": "Hale School", "first-job": "Paper round"}
OLD_ANSWERS = {"birth-city": "Hobart", "first-job": "Tutor", "first-car": "VW"}


class Command(BaseCommand):
    help = "Create the register demo's users (sam, kim, lee, rita) with secret questions."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--password", default="register-demo-pw", help="everyone's password")
        parser.add_argument("--user", action="append", default=[], help="another user like sam")
        parser.add_argument(
            "--legacy-user", action="append", default=[], help="another user like lee"
        )
        parser.add_argument(
            "--staff-user", action="append", default=[], help="another user like rita"
        )
        parser.add_argument("--no-defaults", action="store_true", help="only the extra users")

    def handle(self, *args: Any, **options: Any) -> None:
        people: list[tuple[str, str, str, str]] = []  # username, name, e-mail, kind
        if not options["no_defaults"]:
            people += [
                ("sam", "Sam Lee", "sam@acme.example", "current"),
                ("kim", "Kim Ng", "accounts@acme.example", "current"),
                ("lee", "Lee Wu", "lee@acme.example", "legacy"),
                ("rita", "Rita Admin", "rita@register.example", "staff"),
            ]
        for kind, names in (
            ("current", options["user"]),
            ("legacy", options["legacy_user"]),
            ("staff", options["staff_user"]),
        ):
            people += [(n, n.replace("-", " ").title(), f"{n}@acme.example", kind) for n in names]
        for username, name, email, kind in people:
            self._seed(username, name, email, kind, options["password"])
            self.stdout.write(f"{username:<12} {email:<24} {kind}")
        self.stdout.write(self.style.SUCCESS(f"password for all: {options['password']}"))

    def _seed(self, username: str, name: str, email: str, kind: str, password: str) -> None:
        first, _, last = name.partition(" ")
        with transaction.atomic():
            user, _ = get_user_model().objects.update_or_create(
                username=username,
                defaults={
                    "first_name": first,
                    "last_name": last,
                    "email": email,
                    "is_staff": kind == "staff",
                    "is_active": True,
                },
            )
            user.set_password(password)
            user.save()
            Profile.objects.update_or_create(user=user, defaults={"mfa_opted_in": False})
        mfa = get_mfa()
        subject = subject_for(user)
        mfa.unlock(subject, actor="seed_demo")
        if kind == "legacy":
            # An existing set from before the roll-out: hashed in mfakit's format and
            # imported with the rules it was set under (docs/deployments.md).
            hasher = mfa.factor("secret_questions").hasher  # type: ignore[attr-defined]
            hashes = {
                question: hasher.hash(f"{question}\x1f{normalize_answer(answer)}")
                for question, answer in OLD_ANSWERS.items()
            }
            mfa.enroll(subject, SecretQuestions.import_hashes(hashes, rules=OLD_RULES))
        else:
            mfa.enroll(subject, SecretQuestions.setup(ANSWERS))
