"""The portal's forms. Validation of codes and answers is mfakit's; these only carry text."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.base_user import AbstractBaseUser

from .mfa import QUESTIONS


class CodeForm(forms.Form):
    code = forms.CharField(
        label="One-time passcode",
        max_length=32,  # mfakit normalises (spaces, dashes) and refuses malformed codes
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )


class AnswersForm(forms.Form):
    """One text field per question the challenge asks (``prompts``), in that order."""

    def __init__(self, prompts: list[tuple[str, str]], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for question_id, text in prompts:
            self.fields[f"answer-{question_id}"] = forms.CharField(
                label=text, max_length=256, widget=forms.TextInput(attrs={"autocomplete": "off"})
            )

    def answers(self) -> dict[str, str]:
        return {
            name.removeprefix("answer-"): value
            for name, value in self.cleaned_data.items()
            if name.startswith("answer-")
        }


class PasswordCheckForm(forms.Form):
    """Re-entry of the current password before a sensitive change (SECURITY.md 30)."""

    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, user: AbstractBaseUser, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self) -> str:
        password: str = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError("That password is not correct.")
        return password


class EmailChangeForm(PasswordCheckForm):
    email = forms.EmailField(label="New e-mail address", max_length=254)

    field_order = ("email", "password")


_CHOICES = [("", "Choose a question"), *QUESTIONS.items()]


class QuestionsForm(PasswordCheckForm):
    """Three questions from the list and their answers; the rules are mfakit's."""

    question_1 = forms.ChoiceField(label="Question 1", choices=_CHOICES)
    answer_1 = forms.CharField(label="Answer 1", max_length=256)
    question_2 = forms.ChoiceField(label="Question 2", choices=_CHOICES)
    answer_2 = forms.CharField(label="Answer 2", max_length=256)
    question_3 = forms.ChoiceField(label="Question 3", choices=_CHOICES)
    answer_3 = forms.CharField(label="Answer 3", max_length=256)

    field_order = (
        "question_1",
        "answer_1",
        "question_2",
        "answer_2",
        "question_3",
        "answer_3",
        "password",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        chosen = [data.get(f"question_{i}") for i in (1, 2, 3)]
        if all(chosen) and len(set(chosen)) != 3:
            raise forms.ValidationError("Choose three different questions.")
        return data

    def answers(self) -> dict[str, str]:
        data = self.cleaned_data
        return {data[f"question_{i}"]: data[f"answer_{i}"] for i in (1, 2, 3)}
