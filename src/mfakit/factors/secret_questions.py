"""Secret questions: the register deployment's fallback when the e-mailed code does not arrive.

NIST SP 800-63B (rev. 4) does not accept knowledge-based questions as an authenticator at
all, and ASVS 5 6.4.2 asks not to use them; with a password they are never multi-factor
authentication (SECURITY.md 24). mfakit offers them only as a configured fallback or for
recovery, the way the register uses them, and makes them as strong as questions can be
(OWASP security questions cheat sheet; SECURITY.md 25, 26):

* answers are normalised (NFKC, case folded, trimmed, inner white space collapsed) and each
  is argon2id-hashed on its own, *bound to its question*: the hash of an answer moved to
  another question never verifies;
* the register's rules, configurable: exactly N questions, unique; N answers, unique after
  normalisation, each at least M characters; answers equal to the username, the e-mail
  address or the question are refused;
* every asked question must be answered; a failure never says which answer was wrong, and
  the same questions are asked again (no cycling until an easier one comes up);
* a stored set records the rules it satisfied, so tightened rules can flag "must update";
* no hints are stored or shown (ISM-1980); answers cannot be read back, by anyone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Final, Literal

from mfakit._models import Credential, CredentialStatus, FactorKind, Subject, new_id
from mfakit.exceptions import ConfigurationError, InvalidInput, InvalidType, WeakSecret
from mfakit.factors._base import Factor, FactorSetup, check_prompt_options
from mfakit.hazmat.hashing import SecretHasher

__all__ = ["AnswerRules", "QuestionSetup", "SecretQuestions", "normalize_answer"]

_MAX_ANSWER_INPUT: Final = 256
_MAX_QUESTION: Final = 200
_SPACES: Final = re.compile(r"\s+")
#: Prefix of free-text questions written by the subject ("free:" + text).
FREE_TEXT: Final = "free:"


def normalize_answer(raw: object) -> str:
    """NFKC, case folded, trimmed, inner white space collapsed (SECURITY.md 25).

    Idempotent: ``normalize_answer(normalize_answer(x)) == normalize_answer(x)``.

    Raises:
        InvalidType: Not a ``str``.
        InvalidInput: Longer than 256 characters, checked before any Unicode work and again
            after it (NFKC can expand one character into eighteen).
    """
    if not isinstance(raw, str):
        raise InvalidType(f"an answer must be str, not {type(raw).__name__}")
    if len(raw) > _MAX_ANSWER_INPUT:
        raise InvalidInput(f"an answer may have at most {_MAX_ANSWER_INPUT} characters")
    text = unicodedata.normalize("NFKC", raw).casefold()
    # casefold() can produce text NFKC would change again (e.g. "ẞ" -> "ss" is fine, but
    # some compatibility characters re-compose), so normalise once more to be idempotent.
    text = unicodedata.normalize("NFKC", text)
    text = _SPACES.sub(" ", text).strip()
    if len(text) > _MAX_ANSWER_INPUT:
        raise InvalidInput(f"an answer may have at most {_MAX_ANSWER_INPUT} characters")
    return text


@dataclasses.dataclass(frozen=True, slots=True, order=True)
class AnswerRules:
    """The rules a set of questions and answers must satisfy (the register's, by default).

    Args:
        count: Questions in a set, all different.
        min_length: Characters per answer after normalisation.
        unique_answers: Answers must differ from each other after normalisation.
    """

    count: int = 3
    min_length: int = 4
    unique_answers: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise ConfigurationError("AnswerRules.count must be a positive int")
        if (
            isinstance(self.min_length, bool)
            or not isinstance(self.min_length, int)
            or self.min_length < 1
        ):
            raise ConfigurationError("AnswerRules.min_length must be a positive int")

    def satisfied_by(self, stored: Mapping[str, Any]) -> bool:
        """Whether a set stored under rules ``stored`` meets these rules too."""
        try:
            return (
                int(stored["count"]) == self.count
                and int(stored["min_length"]) >= self.min_length
                and (bool(stored["unique_answers"]) or not self.unique_answers)
            )
        except (KeyError, TypeError, ValueError):
            return False

    def as_dict(self) -> dict[str, Any]:
        """The rules as plain data, stored with each set."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True, slots=True)
class QuestionSetup(FactorSetup):
    """A request to set (or replace) a subject's secret questions. ``repr`` hides answers.

    Attributes:
        answers: Question id (from the catalogue) or ``"free:<text>"`` -> answer, in the
            order the subject chose them.
        hashes: Instead of answers, existing argon2id hashes to import (see
            :meth:`SecretQuestions.import_hashes`).
        rules: With ``hashes``, the rules the imported answers satisfied.
    """

    factor: ClassVar[str] = "secret_questions"
    answers: Mapping[str, str] = dataclasses.field(repr=False, default_factory=dict)
    hashes: Mapping[str, str] = dataclasses.field(repr=False, default_factory=dict)
    rules: AnswerRules | None = None


class SecretQuestions(Factor):
    """Secret questions and answers, argon2id-hashed and bound to their questions.

    Args:
        catalogue: Question id -> text, supplied by the host.
        allow_free_text: Let subjects write their own questions (``"free:<text>"``).
        rules: :class:`AnswerRules` (default: the register's 3 unique questions, 3 unique
            answers of at least 4 characters).
        ask: How many of the stored questions a challenge asks (default: all).
        hasher: The argon2id hasher.
        max_attempts: Attempts against one challenge (the subject lockout applies too).
        purpose: ``"fallback"`` (default: the register's "code did not arrive") or
            ``"recovery"``.
        challenge_ttl: How long a prompt stays answerable.
    """

    name: ClassVar[str] = "secret_questions"
    kind: ClassVar[FactorKind] = FactorKind.KNOWLEDGE

    def __init__(
        self,
        catalogue: Mapping[str, str],
        *,
        allow_free_text: bool = False,
        rules: AnswerRules | None = None,
        ask: int | None = None,
        hasher: SecretHasher | None = None,
        max_attempts: int = 3,
        purpose: Literal["recovery", "fallback"] = "fallback",
        challenge_ttl: dt.timedelta = dt.timedelta(minutes=10),
    ) -> None:
        if not isinstance(catalogue, Mapping) or not catalogue:
            raise ConfigurationError("catalogue must be a non-empty mapping of id -> text")
        for qid, text in catalogue.items():
            if not isinstance(qid, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", qid):
                raise ConfigurationError(f"question id {qid!r} must be 1-32 of A-Z a-z 0-9 _ -")
            if not isinstance(text, str) or not text.strip() or len(text) > _MAX_QUESTION:
                raise ConfigurationError(f"question {qid!r} needs a text of 1-200 characters")
        self.rules = rules if rules is not None else AnswerRules()
        if not isinstance(self.rules, AnswerRules):
            raise ConfigurationError("rules must be AnswerRules")
        if len(catalogue) < self.rules.count and not allow_free_text:
            raise ConfigurationError("the catalogue has fewer questions than a set needs")
        if ask is not None and (isinstance(ask, bool) or not 1 <= ask <= self.rules.count):
            raise ConfigurationError("ask must be between 1 and the number of questions")
        check_prompt_options(
            "SecretQuestions",
            max_attempts=max_attempts,
            purpose=purpose,
            challenge_ttl=challenge_ttl,
        )
        self.catalogue = dict(catalogue)
        self.allow_free_text = bool(allow_free_text)
        self.ask = ask
        self.hasher = hasher if hasher is not None else SecretHasher()
        self.max_attempts = max_attempts
        self.purpose = purpose
        self.challenge_ttl = challenge_ttl

    def __repr__(self) -> str:
        return f"SecretQuestions(questions={len(self.catalogue)}, rules={self.rules})"

    @staticmethod
    def setup(answers: Mapping[str, str]) -> QuestionSetup:
        """Describe a new set of questions and answers for :meth:`mfakit.MFA.enroll`."""
        if not isinstance(answers, Mapping):
            raise InvalidType("answers must be a mapping of question id -> answer")
        return QuestionSetup(answers=dict(answers))

    @staticmethod
    def import_hashes(hashes: Mapping[str, str], *, rules: AnswerRules) -> QuestionSetup:
        """Import a set hashed elsewhere, in mfakit's format.

        Each value is an argon2id PHC string of ``"<question id>\\x1f<normalised answer>"``
        (see :func:`normalize_answer`), so the binding to the question holds. ``rules`` are
        the rules the answers were checked against when they were set; a set imported
        under weaker rules than the factor's is reported as needing an update.
        """
        if not isinstance(hashes, Mapping) or not isinstance(rules, AnswerRules):
            raise InvalidType("hashes must be a mapping and rules AnswerRules")
        for value in hashes.values():
            if not isinstance(value, str) or not value.startswith("$argon2id$"):
                raise InvalidInput("imported hashes must be argon2id PHC strings")
        return QuestionSetup(hashes=dict(hashes), rules=rules)

    # pure operations ---------------------------------------------------------------------
    def question_text(self, qid: str) -> str:
        """The text shown for a question id (catalogue or free text)."""
        if qid.startswith(FREE_TEXT):
            return qid[len(FREE_TEXT) :]
        return self.catalogue[qid]

    def _check_question(self, qid: object) -> str:
        if not isinstance(qid, str):
            raise InvalidType("question ids must be str")
        if qid.startswith(FREE_TEXT):
            text = qid[len(FREE_TEXT) :]
            if not self.allow_free_text:
                raise InvalidInput("free-text questions are not allowed")
            if not text.strip() or len(text) > _MAX_QUESTION or not text.isprintable():
                raise InvalidInput("a free-text question needs 1-200 printable characters")
            return FREE_TEXT + _SPACES.sub(" ", text.strip())
        if qid not in self.catalogue:
            raise InvalidInput("unknown question id")
        return qid

    def validate(self, subject: Subject, answers: Mapping[str, str]) -> list[tuple[str, str]]:
        """Check a new set against the rules; return (question id, normalised answer) pairs.

        Raises:
            InvalidInput: Wrong number of questions, duplicates, unknown question ids.
            WeakSecret: An answer too short, repeated, or equal to the username, e-mail
                address or question text. Messages name the rule, never the answer.
        """
        rules = self.rules
        pairs = [(self._check_question(q), normalize_answer(a)) for q, a in answers.items()]
        if len(pairs) != rules.count:
            raise InvalidInput(f"choose exactly {rules.count} questions")
        questions = [q for q, _ in pairs]
        texts = {normalize_answer(self.question_text(q)) for q in questions}
        if len(set(questions)) != len(questions) or len(texts) != len(questions):
            raise InvalidInput("choose different questions")
        normalized = [a for _, a in pairs]
        if any(len(a) < rules.min_length for a in normalized):
            raise WeakSecret(f"each answer needs at least {rules.min_length} characters")
        if rules.unique_answers and len(set(normalized)) != len(normalized):
            raise WeakSecret("give a different answer to each question")
        personal = {normalize_answer(v) for v in (subject.username, subject.email) if v}
        for qid, answer in pairs:
            if answer in personal:
                raise WeakSecret("an answer may not be your username or e-mail address")
            if answer == normalize_answer(self.question_text(qid)):
                raise WeakSecret("an answer may not repeat its question")
        return pairs

    @staticmethod
    def _bound(qid: str, answer: str) -> str:
        # The hash input names its question: an answer hash moved to another question
        # (or another question's answer typed here) never verifies.
        return f"{qid}\x1f{answer}"

    def begin(self, subject: Subject, setup: QuestionSetup, *, now: dt.datetime) -> Credential:
        """The active credential holding the set (hashes only; questions in ``params``)."""
        if setup.hashes:
            questions = [self._check_question(q) for q in setup.hashes]
            hashes = [setup.hashes[q] for q in setup.hashes]
            rules = setup.rules if setup.rules is not None else AnswerRules(count=len(questions))
            if len(set(questions)) != len(questions):
                raise InvalidInput("imported questions must be different")
            if len(questions) != rules.count:
                raise InvalidInput(
                    f"an imported set claiming count={rules.count} must hold that many questions"
                )
        else:
            pairs = self.validate(subject, setup.answers)
            questions = [q for q, _ in pairs]
            hashes = [self.hasher.hash(self._bound(q, a)) for q, a in pairs]
            rules = self.rules
        return Credential(
            id=new_id("cr"),
            subject_id=subject.id,
            tenant=subject.tenant,
            factor=self.name,
            label="Secret questions",
            status=CredentialStatus.ACTIVE,
            created_at=now,
            confirmed_at=now,
            params={"questions": list(questions), "rules": rules.as_dict()},
            secret=json.dumps(hashes).encode("ascii"),
        )

    def needs_update(self, credential: Credential) -> bool:
        """Whether the stored set breaks the current rules (the register's prompt)."""
        return len(self.questions(credential)) != self.rules.count or not self.rules.satisfied_by(
            credential.params.get("rules", {})
        )

    def rehashed(
        self, credential: Credential, asked: Sequence[str], answers: Mapping[str, str]
    ) -> Credential | None:
        """After a success: the set with fresh hashes where the parameters changed, or ``None``.

        Only the questions that were asked, and so answered right, are re-hashed; answers
        given for questions that were not asked are ignored (they were never checked). The
        others keep their hash until they are asked (OWASP: rehash on login).
        """
        hashes: list[str] = json.loads(credential.secret.decode("ascii"))
        changed = False
        for index, qid in enumerate(self.questions(credential)):
            given = answers.get(qid)
            if qid not in asked:
                continue
            if isinstance(given, str) and self.hasher.needs_rehash(hashes[index]):
                hashes[index] = self.hasher.hash(self._bound(qid, normalize_answer(given)))
                changed = True
        if not changed:
            return None
        return dataclasses.replace(
            credential,
            secret=json.dumps(hashes).encode("ascii"),
            version=credential.version + 1,
        )

    def questions(self, credential: Credential) -> list[str]:
        """The stored question ids, in the subject's order."""
        return [str(q) for q in credential.params.get("questions", [])]

    def select(self, credential: Credential) -> list[str]:
        """The questions a challenge asks: the same ones every time for this set.

        With ``ask`` below the set size the choice is a fixed pseudo-random subset derived
        from the credential id, so a subject who fails is asked the same questions again
        instead of cycling until an easier one comes up.
        """
        stored = self.questions(credential)
        if self.ask is None or self.ask >= len(stored):
            return stored
        ranked = sorted(
            stored,
            key=lambda q: hashlib.sha256(f"{credential.id}\x1f{q}".encode()).digest(),
        )
        chosen = set(ranked[: self.ask])
        return [q for q in stored if q in chosen]

    def decoy(self, seed: bytes) -> list[str]:
        """Questions to ask a subject who has no set: a stable, keyed choice per subject.

        ``seed`` is a keyed hash of the subject id, so the same subject always sees the
        same questions and nobody without the key can tell them from a real set.
        """
        count = self.ask if self.ask is not None else self.rules.count
        ranked = sorted(self.catalogue, key=lambda q: hashlib.sha256(seed + q.encode()).digest())
        return ranked[:count]

    def matches(
        self, credential: Credential | None, asked: Sequence[str], answers: Mapping[str, str]
    ) -> bool:
        """Whether every asked question got its answer. Always does the full argon2 work.

        One verification per asked question, whatever the outcome, and the result is
        combined without short-circuiting, so time says nothing about which answer failed
        or whether the subject has questions at all (SECURITY.md 36).
        """
        stored: dict[str, str] = {}
        if credential is not None:
            hashes = json.loads(credential.secret.decode("ascii"))
            stored = dict(zip(self.questions(credential), hashes, strict=False))
        ok = credential is not None and bool(asked)
        for qid in asked:
            given = answers.get(qid, "")
            answer = normalize_answer(given) if isinstance(given, str) else ""
            encoded = stored.get(qid)
            if encoded is None or not answer:
                # Same argon2 work, and a missing answer can never match anything.
                self.hasher.dummy_verify(self._bound(qid, answer or "-"))
                ok = False
                continue
            result = self.hasher.verify(encoded, self._bound(qid, answer or "-"))
            ok = result and ok  # the verification above already ran, whatever ``ok`` was
        return ok
