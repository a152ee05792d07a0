"""The guides' code runs as printed, and the SMS provider example works, all without a network.

Two parts:

* Every ```` ```python ```` block of the SMS, e-mail and deployment guides runs, in order,
  in one fresh namespace per page, so the documentation cannot drift from the API. A block
  right after the line ``<!-- not-run -->`` is skipped (it needs a network, a secret or a
  package mfakit does not depend on); it must still compile.
* ``examples/sms_http_adapter.py`` (not a package: loaded by path) is driven through a fake
  urllib opener and a fake ``post`` callable: the URL, the form fields, the basic-auth
  header, the timeout, the refusal of non-2xx answers, and that neither the code nor the
  provider's answer reaches an exception or a log.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib.util
import io
import logging
import re
import urllib.error
import urllib.parse
import urllib.request
import urllib.response
from collections.abc import Mapping
from email.message import Message
from pathlib import Path
from types import CodeType, ModuleType

import pytest

from mfakit import MFA, DeliveryError, Keyring, Subject
from mfakit.factors import SMSOTP
from mfakit.testing import FakeClock, MemoryStore

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLE = ROOT / "examples" / "sms_http_adapter.py"

#: The guides whose Python blocks run (each page in its own namespace).
RUNNABLE_PAGES = (
    "sms.md",
    "email.md",
    "deployments.md",
    "knowledge.md",
    "policy.md",
    "flow.md",
    "admin.md",
)
#: Put this line right before a ```python block that must not run.
NOT_RUN = "<!-- not-run -->"

_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)

SID = "AC0123456789abcdef0123456789abcdef"
TOKEN = "s3cr3t-auth-token"
FROM = "+61400000000"
TO = "+61491570156"
TEXT = "123456 is your ACME verification code. It expires in 5 minutes."
URL = f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json"
#: What a provider's error answer may look like: it quotes the request.
ERROR_BODY = b'{"code": 21211, "message": "Invalid To number +61491570156 for 123456"}'


# --- the documentation's code blocks -------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Block:
    """One ```python block of a page."""

    page: str
    line: int  # the line of the block's first line of code, 1-based
    source: str
    runnable: bool


def python_blocks(page: str) -> list[Block]:
    """The ```python blocks of ``docs/<page>``, in order, with their not-run marks."""
    return blocks_of((DOCS / page).read_text(encoding="utf-8"), page)


def blocks_of(text: str, page: str) -> list[Block]:
    """The ```python blocks of a Markdown ``text``."""
    blocks = []
    for match in _FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").splitlines()
        marked = bool(before) and before[-1].strip() == NOT_RUN
        line = text.count("\n", 0, match.start()) + 2
        blocks.append(Block(page, line, match.group(1), runnable=not marked))
    return blocks


def compiled(block: Block) -> CodeType:
    # Padding keeps the page's own line numbers in tracebacks: a failure points at the page.
    source = "\n" * (block.line - 1) + block.source
    return compile(source, str(DOCS / block.page), "exec")


def test_the_block_parser_honours_the_not_run_mark() -> None:
    text = (
        "Text with ```` ```python ```` inline.\n\n"
        "```python\nx = 1\n```\n\n"
        "<!-- not-run -->\n```python\nimport nowhere\n```\n\n"
        "```html\n<p>\n```\n\n"
        "```python\ny = x\n```\n"
    )
    blocks = blocks_of(text, "page.md")
    assert [(b.line, b.source, b.runnable) for b in blocks] == [
        (4, "x = 1\n", True),
        (9, "import nowhere\n", False),
        (17, "y = x\n", True),
    ]


@pytest.mark.parametrize("page", RUNNABLE_PAGES)
def test_every_block_compiles_and_most_run(page: str) -> None:
    blocks = python_blocks(page)
    runnable = [b for b in blocks if b.runnable]
    assert runnable, f"{page} has no runnable python block"
    assert len(runnable) > len(blocks) - len(runnable), f"{page}: most blocks should run"
    for block in blocks:
        compiled(block)  # a SyntaxError names the page and line


@pytest.mark.parametrize("page", RUNNABLE_PAGES)
def test_page_runs_as_printed(page: str, caplog: pytest.LogCaptureFixture) -> None:
    namespace: dict[str, object] = {"__name__": f"docs_{page.removesuffix('.md')}"}
    with caplog.at_level(logging.WARNING, logger="mfakit"):
        for block in python_blocks(page):
            if block.runnable:
                exec(compiled(block), namespace)
    # The pages make senders fail on purpose; the log must name no code or address.
    for record in caplog.records:
        assert not re.search(r"\d{6}", record.getMessage()), record.getMessage()


def test_pages_are_in_the_toctree() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    toctree = index.split("```{toctree}", 1)[1].split("```", 1)[0].split()
    for page in RUNNABLE_PAGES:
        assert page.removesuffix(".md") in toctree


def test_the_security_map_names_tests_that_exist() -> None:
    """Every ``test_*.py`` file and ``test_*`` function that docs/security.md cites exists."""
    text = (DOCS / "security.md").read_text(encoding="utf-8")
    sources = [*(ROOT / "tests").glob("test_*.py"), ROOT / "src/mfakit/testing/contract.py"]
    defined = {
        name
        for path in sources
        for name in re.findall(r"^\s*def (test_\w+)", path.read_text("utf-8"), re.MULTILINE)
    }
    files = set(re.findall(r"`(test_\w+\.py)`", text))
    functions = set(re.findall(r"`(test_\w+)`", text))
    assert files
    assert functions
    assert sorted(f for f in files if not (ROOT / "tests" / f).exists()) == []
    assert sorted(functions - defined) == []


# --- the SMS provider example ----------------------------------------------------------------


@pytest.fixture(scope="module")
def adapter() -> ModuleType:
    """``examples/sms_http_adapter.py``, imported by path (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location("sms_http_adapter", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeResponse:
    """The part of :class:`http.client.HTTPResponse` the sender uses."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.closed = False

    def __enter__(self) -> FakeResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed = True


class FakeOpener:
    """Records each request; answers ``status``, or raises ``HTTPError`` like urllib does."""

    def __init__(self, status: int = 201, *, error: int | None = None) -> None:
        self.status = status
        self.error = error
        self.calls: list[tuple[urllib.request.Request, float]] = []
        self.responses: list[FakeResponse] = []
        self.error_bodies: list[io.BytesIO] = []

    def open(
        self, fullurl: urllib.request.Request, data: None = None, timeout: float = -1.0
    ) -> FakeResponse:
        self.calls.append((fullurl, timeout))
        if self.error is not None:
            body = io.BytesIO(ERROR_BODY)
            self.error_bodies.append(body)
            raise urllib.error.HTTPError(fullurl.full_url, self.error, "Error", Message(), body)
        response = FakeResponse(self.status)
        self.responses.append(response)
        return response

    def only_request(self) -> tuple[urllib.request.Request, float]:
        assert len(self.calls) == 1
        return self.calls[0]


def form_of(request: urllib.request.Request) -> dict[str, list[str]]:
    assert isinstance(request.data, bytes)
    return urllib.parse.parse_qs(request.data.decode("ascii"), strict_parsing=True)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def make_sender(adapter: ModuleType, opener: FakeOpener, *, timeout: float = 7.5) -> object:
    return adapter.TwilioSMSSender(
        account_sid=SID, auth_token=TOKEN, from_number=FROM, timeout=timeout, opener=opener
    )


def test_urllib_sender_posts_the_form_with_basic_auth_and_a_timeout(adapter: ModuleType) -> None:
    opener = FakeOpener(201)
    sender = make_sender(adapter, opener, timeout=7.5)

    sender.send_sms(TO, TEXT)  # type: ignore[attr-defined]

    request, timeout = opener.only_request()
    assert request.full_url == URL
    assert request.get_method() == "POST"
    assert form_of(request) == {"To": [TO], "From": [FROM], "Body": [TEXT]}
    assert request.get_header("Authorization") == basic(SID, TOKEN)
    assert request.get_header("Content-type") == "application/x-www-form-urlencoded"
    assert timeout == 7.5
    assert opener.responses[0].closed


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_urllib_sender_accepts_every_2xx(adapter: ModuleType, status: int) -> None:
    make_sender(adapter, FakeOpener(status)).send_sms(TO, TEXT)  # type: ignore[attr-defined]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 429, 500, 503])
def test_urllib_sender_raises_on_an_error_answer_without_quoting_it(
    adapter: ModuleType, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    opener = FakeOpener(error=status)
    sender = make_sender(adapter, opener)

    with caplog.at_level(logging.DEBUG), pytest.raises(adapter.SMSProviderError) as info:
        sender.send_sms(TO, TEXT)  # type: ignore[attr-defined]

    assert info.value.status == status
    assert str(info.value) == f"SMS provider answered HTTP {status}"
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    assert opener.error_bodies[0].closed  # the provider's answer was closed unread
    for secret in ("123456", TO, TOKEN):
        assert secret not in str(info.value)
        assert secret not in caplog.text


@pytest.mark.parametrize("status", [100, 199, 301, 302, 304, 399])
def test_urllib_sender_raises_on_any_other_status(adapter: ModuleType, status: int) -> None:
    with pytest.raises(adapter.SMSProviderError):
        make_sender(adapter, FakeOpener(status)).send_sms(TO, TEXT)  # type: ignore[attr-defined]


class FakeHTTPResponse(urllib.response.addinfourl):
    """A response as urllib's own handlers return it (``msg`` is read on errors)."""

    msg = "Fake"


class FakeHTTPS(urllib.request.BaseHandler):
    """Answers https:// requests inside urllib itself, before its real HTTPS handler."""

    handler_order = 100  # urllib.request.HTTPSHandler is 500

    def __init__(self, status: int, *, location: str | None = None) -> None:
        self.status = status
        self.location = location
        self.requests: list[urllib.request.Request] = []

    def https_open(self, req: urllib.request.Request) -> urllib.response.addinfourl:
        self.requests.append(req)
        headers = Message()
        if self.location is not None:
            headers["Location"] = self.location
        return FakeHTTPResponse(io.BytesIO(b"{}"), headers, req.full_url, self.status)


def real_opener(adapter: ModuleType, handler: FakeHTTPS) -> urllib.request.OpenerDirector:
    opener = adapter.default_opener()
    assert isinstance(opener, urllib.request.OpenerDirector)
    opener.add_handler(handler)
    return opener


def test_the_default_opener_sends_through_urllib(adapter: ModuleType) -> None:
    https = FakeHTTPS(201)
    sender = adapter.TwilioSMSSender(
        account_sid=SID, auth_token=TOKEN, from_number=FROM, opener=real_opener(adapter, https)
    )
    sender.send_sms(TO, TEXT)
    assert len(https.requests) == 1
    request = https.requests[0]
    assert request.full_url == URL
    assert request.get_header("Authorization") == basic(SID, TOKEN)
    assert form_of(request) == {"To": [TO], "From": [FROM], "Body": [TEXT]}


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_the_default_opener_refuses_redirects(adapter: ModuleType, status: int) -> None:
    https = FakeHTTPS(status, location="https://elsewhere.example/collect")
    sender = adapter.TwilioSMSSender(
        account_sid=SID, auth_token=TOKEN, from_number=FROM, opener=real_opener(adapter, https)
    )
    with pytest.raises(adapter.SMSProviderError) as info:
        sender.send_sms(TO, TEXT)
    assert info.value.status == status
    # Not followed: the credentials and the code never went to the other host.
    assert [r.full_url for r in https.requests] == [URL]


@pytest.mark.parametrize("status", [400, 500])
def test_the_default_opener_turns_error_answers_into_provider_errors(
    adapter: ModuleType, status: int
) -> None:
    https = FakeHTTPS(status)
    sender = adapter.TwilioSMSSender(
        account_sid=SID, auth_token=TOKEN, from_number=FROM, opener=real_opener(adapter, https)
    )
    with pytest.raises(adapter.SMSProviderError) as info:
        sender.send_sms(TO, TEXT)
    assert info.value.status == status


def test_the_sender_without_an_opener_uses_the_default(adapter: ModuleType) -> None:
    sender = adapter.TwilioSMSSender(account_sid=SID, auth_token=TOKEN, from_number=FROM)
    assert isinstance(vars(sender)["_opener"], urllib.request.OpenerDirector)


def test_repr_hides_the_token(adapter: ModuleType) -> None:
    text = repr(make_sender(adapter, FakeOpener()))
    assert TOKEN not in text
    assert "***" in text
    post_sender = adapter.TwilioPostSMSSender(
        post=lambda url, data, auth: 201, account_sid=SID, auth_token=TOKEN, from_number=FROM
    )
    assert TOKEN not in repr(post_sender)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"account_sid": "AC12/../../x"},
        {"account_sid": ""},
        {"auth_token": ""},
        {"auth_token": "tok\nen"},
        {"from_number": ""},
        {"timeout": 0},
        {"timeout": -1.0},
        {"timeout": True},
        {"base_url": "http://api.twilio.com/2010-04-01"},
        {"base_url": "file:///etc/passwd"},
    ],
)
def test_unusable_arguments_are_refused(adapter: ModuleType, kwargs: dict[str, object]) -> None:
    arguments: dict[str, object] = {
        "account_sid": SID,
        "auth_token": TOKEN,
        "from_number": FROM,
        "opener": FakeOpener(),
    }
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=r"\w"):
        adapter.TwilioSMSSender(**arguments)


def test_another_base_url(adapter: ModuleType) -> None:
    opener = FakeOpener()
    sender = adapter.TwilioSMSSender(
        account_sid=SID,
        auth_token=TOKEN,
        from_number=FROM,
        opener=opener,
        base_url="https://sms-gateway.internal.example/2010-04-01/",
    )
    sender.send_sms(TO, TEXT)
    request, _ = opener.only_request()
    assert request.full_url == (
        f"https://sms-gateway.internal.example/2010-04-01/Accounts/{SID}/Messages.json"
    )


class FakePost:
    """A ``post(url, data, auth) -> status`` callable that records its calls."""

    def __init__(self, status: object = 201) -> None:
        self.status = status
        self.calls: list[tuple[str, dict[str, str], tuple[str, str]]] = []

    def __call__(self, url: str, data: Mapping[str, str], auth: tuple[str, str]) -> object:
        self.calls.append((url, dict(data), auth))
        return self.status


def test_post_sender_hands_url_form_and_auth_to_the_callable(adapter: ModuleType) -> None:
    post = FakePost(201)
    sender = adapter.TwilioPostSMSSender(
        post=post, account_sid=SID, auth_token=TOKEN, from_number=FROM
    )

    sender.send_sms(TO, TEXT)

    assert post.calls == [(URL, {"To": TO, "From": FROM, "Body": TEXT}, (SID, TOKEN))]


@pytest.mark.parametrize("status", [301, 400, 401, 429, 500])
def test_post_sender_raises_on_non_2xx(adapter: ModuleType, status: int) -> None:
    sender = adapter.TwilioPostSMSSender(
        post=FakePost(status), account_sid=SID, auth_token=TOKEN, from_number=FROM
    )
    with pytest.raises(adapter.SMSProviderError) as info:
        sender.send_sms(TO, TEXT)
    assert info.value.status == status
    assert "123456" not in str(info.value)


@pytest.mark.parametrize("status", [True, "201", None, 201.0])
def test_post_sender_wants_an_int_status(adapter: ModuleType, status: object) -> None:
    sender = adapter.TwilioPostSMSSender(
        post=FakePost(status), account_sid=SID, auth_token=TOKEN, from_number=FROM
    )
    with pytest.raises(TypeError):
        sender.send_sms(TO, TEXT)


def test_post_sender_needs_a_callable(adapter: ModuleType) -> None:
    with pytest.raises(ValueError, match="callable"):
        adapter.TwilioPostSMSSender(
            post="https://example.com", account_sid=SID, auth_token=TOKEN, from_number=FROM
        )


# --- the example behind the facade ------------------------------------------------------------


@pytest.fixture
def alice() -> Subject:
    return Subject(id="u-alice", tenant="t1", username="alice")


def facade(sender: object) -> MFA:
    return MFA(
        store=MemoryStore(),
        keyring=Keyring.ephemeral(),
        factors=[SMSOTP(sender=sender, issuer="ACME")],  # type: ignore[arg-type]
        clock=FakeClock(),
    )


def code_in(request: urllib.request.Request) -> str:
    body = form_of(request)["Body"][0]
    found = re.match(r"(\d{6}) is your ACME verification code", body)
    assert found is not None, body
    return found.group(1)


def test_the_example_sender_enrols_a_number_through_the_facade(
    adapter: ModuleType, alice: Subject
) -> None:
    opener = FakeOpener(201)
    mfa = facade(make_sender(adapter, opener))

    enrollment = mfa.enroll(alice, SMSOTP.setup("0491 570 156", "AU"))
    request, _ = opener.only_request()
    assert form_of(request)["To"] == ["+61491570156"]

    assert mfa.confirm(alice, enrollment.id, code_in(request)).active


def test_a_provider_error_becomes_delivery_error_and_leaves_nothing(
    adapter: ModuleType, alice: Subject, caplog: pytest.LogCaptureFixture
) -> None:
    opener = FakeOpener(error=400)
    mfa = facade(make_sender(adapter, opener))

    with caplog.at_level(logging.DEBUG), pytest.raises(DeliveryError) as info:
        mfa.enroll(alice, SMSOTP.setup("0491 570 156", "AU"))

    request, _ = opener.only_request()
    code = code_in(request)
    assert mfa.credentials(alice, include_pending=True) == []
    assert "SMSProviderError" in caplog.text  # the type is logged, nothing else
    for secret in (code, "491570156", TOKEN, ERROR_BODY.decode()):
        assert secret not in str(info.value)
        assert secret not in caplog.text
    # The provider's exception is not chained: no cause, and no context shown.
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__
