"""An SMS sender for mfakit over an HTTP SMS API: Twilio's Messages resource.

mfakit does not talk to SMS providers itself. It calls one method of an object you give it,
``send_sms(to, text)`` (the :class:`mfakit.typing.SMSSender` protocol), after the challenge
is stored; if that method raises *anything*, mfakit withdraws the challenge and raises
:class:`mfakit.DeliveryError`. This file shows such a sender for the most common HTTP SMS
API shape, Twilio's "create a Message" call::

    POST https://api.twilio.com/2010-04-01/Accounts/{AccountSid}/Messages.json
    Authorization: Basic base64(AccountSid:AuthToken)
    Content-Type: application/x-www-form-urlencoded

    To=%2B61412345678&From=%2B61400000000&Body=...

Most other providers (Vonage, MessageBird, Sinch, AWS SNS through an HTTP gateway, ...)
differ only in the URL, the field names and the way the credentials travel: copy this file
into your project and change those.

Two variants:

* :class:`TwilioSMSSender` uses only the standard library (:mod:`urllib.request`), so it
  works on every host. It sets a timeout, refuses redirects (a redirected request would
  carry the credentials elsewhere), and raises :class:`SMSProviderError` on any status
  outside 2xx.
* :class:`TwilioPostSMSSender` takes a ``post(url, data, auth) -> status`` callable, so a
  host that already uses ``httpx`` or ``requests`` (connection pools, proxies, retries,
  instrumentation) plugs that in; its docstring shows the callable for both.

Neither ever logs or quotes the message body or the provider's answer: the body holds the
code, and a provider's error answer often echoes the request. Errors carry the HTTP status
only.

Importing this file sends nothing. ``tests/test_docs_examples.py`` tests both variants
with a fake opener and a fake ``post`` callable, without any network.
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from email.message import Message
from typing import IO, Any, Final, Protocol

__all__ = [
    "TWILIO_API",
    "Opener",
    "PostFunction",
    "SMSProviderError",
    "TwilioPostSMSSender",
    "TwilioSMSSender",
    "default_opener",
    "messages_url",
    "twilio_form",
]

#: Base URL of Twilio's REST API (the 2010-04-01 version is the current one).
TWILIO_API: Final = "https://api.twilio.com/2010-04-01"

#: ``post(url, form_fields, (username, password)) -> HTTP status``; the callable must send
#: the fields form-encoded with HTTP basic auth, apply its own timeout and not follow
#: redirects.
PostFunction = Callable[[str, Mapping[str, str], tuple[str, str]], int]


class Opener(Protocol):
    """What :class:`TwilioSMSSender` needs of an opener: :class:`urllib.request.OpenerDirector`
    fits, and so does a test fake."""

    def open(self, fullurl: urllib.request.Request, data: None = None, timeout: float = ...) -> Any:
        """Send ``fullurl`` and return a response usable as a context manager with ``status``."""
        ...


class SMSProviderError(RuntimeError):
    """The provider did not accept the message.

    Attributes:
        status: The HTTP status the provider answered with.

    The message names the status only: never the body sent (it holds the code) nor the
    provider's answer (which may quote it).
    """

    def __init__(self, status: int) -> None:
        super().__init__(f"SMS provider answered HTTP {status}")
        self.status = status


def _check(name: str, value: object) -> str:
    if not isinstance(value, str) or not value or not value.isascii() or not value.isprintable():
        raise ValueError(f"{name} must be a non-empty printable ASCII str")
    return value


def messages_url(account_sid: str, *, base_url: str = TWILIO_API) -> str:
    """The Messages resource of an account: ``{base_url}/Accounts/{sid}/Messages.json``.

    Raises:
        ValueError: ``account_sid`` is not alphanumeric (it goes into the URL path) or
            ``base_url`` is not ``https://``.
    """
    if not isinstance(account_sid, str) or not account_sid.isascii() or not account_sid.isalnum():
        raise ValueError("account_sid must be alphanumeric ASCII, such as 'AC0123...'")
    if not isinstance(base_url, str) or not base_url.startswith("https://"):
        raise ValueError("base_url must be an https:// URL")
    return f"{base_url.rstrip('/')}/Accounts/{account_sid}/Messages.json"


def twilio_form(to: str, text: str, from_number: str) -> dict[str, str]:
    """The form fields of a Messages call: ``To``, ``From`` and ``Body``."""
    return {"To": to, "From": from_number, "Body": text}


def _basic_auth(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """Turn every redirect into an :class:`urllib.error.HTTPError`.

    urllib would follow a redirect with the ``Authorization`` header still attached, handing
    the account's credentials to wherever the redirect points.
    """

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


def default_opener() -> urllib.request.OpenerDirector:
    """An opener with urllib's usual handlers, except that redirects are refused."""
    return urllib.request.build_opener(_RefuseRedirects)


class TwilioSMSSender:
    """An :class:`mfakit.typing.SMSSender` over Twilio's Messages API, standard library only.

    Args:
        account_sid: The account SID (``AC...``); also the basic-auth user name.
        auth_token: The auth token (or an API key secret); never shown by ``repr``.
        from_number: The sending number in E.164 (``+61400000000``) or an alphanumeric
            sender id where the destination country allows one.
        timeout: Seconds the connection and each read may block. The facade waits for the
            sender, so keep it short: the person is looking at a spinner.
        opener: What sends the request; default :func:`default_opener` (no redirects).
            Tests pass a fake.
        base_url: The API root, ``https://`` only.

    Raises:
        ValueError: On an unusable argument.

    Example::

        sender = TwilioSMSSender(
            account_sid=os.environ["TWILIO_ACCOUNT_SID"],
            auth_token=os.environ["TWILIO_AUTH_TOKEN"],
            from_number="+61400000000",
        )
        mfa = MFA(..., factors=[SMSOTP(sender=sender, issuer="ACME")])
    """

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str,
        timeout: float = 10.0,
        opener: Opener | None = None,
        base_url: str = TWILIO_API,
    ) -> None:
        self._url = messages_url(account_sid, base_url=base_url)
        self._authorization = _basic_auth(account_sid, _check("auth_token", auth_token))
        self._from = _check("from_number", from_number)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError("timeout must be a positive number of seconds")
        self._timeout = float(timeout)
        self._opener: Opener = opener if opener is not None else default_opener()

    def __repr__(self) -> str:
        return f"TwilioSMSSender(url={self._url!r}, from_number={self._from!r}, auth_token='***')"

    def send_sms(self, to: str, text: str) -> None:
        """Send ``text`` to ``to`` (E.164). Returns once the provider accepted it.

        Raises:
            SMSProviderError: The provider answered with a status outside 2xx (3xx
                included: redirects are not followed).
            OSError: The network failed or timed out (:class:`urllib.error.URLError`,
                :class:`TimeoutError`).
        """
        data = urllib.parse.urlencode(twilio_form(to, text, self._from)).encode("ascii")
        request = urllib.request.Request(  # noqa: S310 - messages_url() allows https:// only
            self._url,
            data=data,
            method="POST",
            headers={
                "Authorization": self._authorization,
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
        )
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            # urllib raises for 4xx/5xx (and for the redirects we refuse). Its body is the
            # provider's answer; close it unread and keep the status only.
            status = exc.code
            exc.close()
            raise SMSProviderError(status) from None
        if not 200 <= status <= 299:
            raise SMSProviderError(status)


class TwilioPostSMSSender:
    """The same sender over an HTTP client of your choice, through a ``post`` callable.

    Args:
        post: ``post(url, data, auth) -> status``: send ``data`` form-encoded to ``url``
            with HTTP basic auth ``auth`` (user, password), with a timeout and without
            following redirects, and return the HTTP status (examples below).
        account_sid: The account SID; also the basic-auth user name.
        auth_token: The auth token; never shown by ``repr``.
        from_number: The sending number or sender id.
        base_url: The API root, ``https://`` only.

    Raises:
        ValueError: On an unusable argument.

    A ``post`` over httpx (reuse one ``httpx.Client`` to keep its connection pool)::

        client = httpx.Client(timeout=10.0, follow_redirects=False)

        def post(url: str, data: Mapping[str, str], auth: tuple[str, str]) -> int:
            return client.post(url, data=dict(data), auth=auth).status_code

    and over requests::

        session = requests.Session()

        def post(url: str, data: Mapping[str, str], auth: tuple[str, str]) -> int:
            response = session.post(url, data=data, auth=auth, timeout=10, allow_redirects=False)
            return response.status_code
    """

    def __init__(
        self,
        *,
        post: PostFunction,
        account_sid: str,
        auth_token: str,
        from_number: str,
        base_url: str = TWILIO_API,
    ) -> None:
        if not callable(post):
            raise ValueError("post must be callable: post(url, data, auth) -> status")
        self._post = post
        self._url = messages_url(account_sid, base_url=base_url)
        self._auth = (account_sid, _check("auth_token", auth_token))
        self._from = _check("from_number", from_number)

    def __repr__(self) -> str:
        return (
            f"TwilioPostSMSSender(url={self._url!r}, from_number={self._from!r}, auth_token='***')"
        )

    def send_sms(self, to: str, text: str) -> None:
        """Send ``text`` to ``to`` through ``post``.

        Raises:
            SMSProviderError: ``post`` returned a status outside 2xx.
            Exception: Whatever ``post`` raises (network errors, timeouts).
        """
        status = self._post(self._url, twilio_form(to, text, self._from), self._auth)
        if isinstance(status, bool) or not isinstance(status, int):
            raise TypeError("post must return the HTTP status as an int")
        if not 200 <= status <= 299:
            raise SMSProviderError(status)
