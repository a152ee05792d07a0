"""AES-256-GCM secret box with key rotation, for secrets at rest (SECURITY.md 18, 19, 22).

SECURITY.md 18: "TOTP seeds (and phone numbers) encrypted with AEAD under keys kept outside
the store, bound to their record by associated data; keys rotate; a tampered blob fails."
:class:`Keyring` is that AEAD. Its keys come from the environment (:meth:`Keyring.from_env`),
never from the store that holds the blobs, so a stolen database alone reveals no seed.

Blob format
-----------
Every blob :meth:`Keyring.encrypt` returns is self-describing::

    +---------+--------+--------------+----------+---------------------------------+
    | version | kidlen | key id       | nonce    | ciphertext || GCM tag            |
    | 1 byte  | 1 byte | kidlen bytes | 12 bytes | len(plaintext) + 16 bytes       |
    +---------+--------+--------------+----------+---------------------------------+

* ``version`` is ``0x01``; any other value is refused.
* ``key id`` names the key that encrypted the blob, so a keyring holding several keys knows
  which one to use without trial decryption.
* ``nonce`` is 96 random bits from :mod:`secrets`. With random nonces NIST SP 800-38D allows
  about 2**32 encryptions per key; a deployment storing MFA seeds is many orders of magnitude
  below that, and every rotation starts a new key.

Associated data binding
-----------------------
The AEAD associated data is ``header || aad`` where ``header`` is the version, key-id length
and key id, and ``aad`` is supplied by the caller. The caller passes something that names the
record the blob belongs to (for example the credential id and the column name), so:

* flipping any bit of the header, nonce, ciphertext or tag makes decryption fail;
* rewriting the key id (even to another id naming the same key) makes decryption fail;
* copying a blob into another record (a different ``aad``) makes decryption fail, which stops
  an attacker with write access to the store from swapping one subject's seed into another's
  row.

Failures raise :class:`~mfakit.exceptions.DecryptionError`; their messages never contain
plaintext, key or blob bytes (SECURITY.md 22), only a key id where one is useful.

What is *not* hidden: the length of the plaintext, and which key id protects a blob.

Key rotation
------------
A :class:`Keyring` holds an ordered list of keys. The first is the *primary*: every new
encryption (and every new MAC) uses it. The others only decrypt and verify. To rotate:

1. Generate a new key with :meth:`Keyring.generate_key` and put it *first* in
   ``MFAKIT_KEYS``, keeping the old key after it: ``MFAKIT_KEYS="new:...,old:..."``.
2. Deploy everywhere. New secrets are now written under the new key; old blobs still
   decrypt with the old one.
3. Re-encrypt: for every stored blob where :meth:`Keyring.needs_rotation` is true, write back
   :meth:`Keyring.rotate`. Delivered one-time codes (see :meth:`Keyring.mac`) expire on their
   own within minutes.
4. When no blob needs rotation any more, remove the old key from ``MFAKIT_KEYS`` and deploy.

Step 1 must be deployed everywhere before any instance writes under the new key, otherwise an
instance still running with the old configuration meets blobs under a key it does not have.

Keyed hashes for delivered codes
--------------------------------
SECURITY.md 19 stores delivered one-time codes as keyed hashes, not in clear. :meth:`Keyring.mac`
computes HMAC-SHA256 under a subkey derived with HKDF-SHA256
(``info = b"mfakit mac " + purpose``), so the AES key is never used directly as an HMAC key and
different purposes get independent keys. A tag is ``kidlen (1 byte) || key id || HMAC (32
bytes)``, so tags made before a rotation still verify while the old key is in the keyring.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import hmac
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Any, Final, NoReturn, SupportsIndex, final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from mfakit.exceptions import ConfigurationError, DecryptionError, InvalidInput, InvalidType

__all__ = ["DEFAULT_KEYS_VARIABLE", "KEY_SIZE", "Keyring"]

#: Environment variable :meth:`Keyring.from_env` reads by default.
DEFAULT_KEYS_VARIABLE: Final = "MFAKIT_KEYS"
#: Key length in bytes (AES-256).
KEY_SIZE: Final = 32

_VERSION: Final = 0x01
_NONCE_SIZE: Final = 12
_TAG_SIZE: Final = 16
_MAC_SIZE: Final = 32
_MAC_INFO: Final = b"mfakit mac "
#: Derived MAC subkeys are cached per (key id, purpose); purposes are expected to be a small
#: fixed set of constants, and this bound keeps a misuse (variable purposes) from growing
#: memory without limit. Beyond it subkeys are still derived, just not cached.
_MAC_CACHE_LIMIT: Final = 256

_KEY_ID: Final = re.compile(r"[A-Za-z0-9._-]{1,32}")
_KEY_TEXT: Final = re.compile(r"[A-Za-z0-9_-]{43}")
_ENTRY_FORMAT: Final = (
    "comma-separated KEYID:KEY entries, KEYID being 1-32 characters of [A-Za-z0-9._-] and "
    "KEY 32 bytes in unpadded base64url (43 characters), as Keyring.generate_key() prints"
)


def _check_key_id(key_id: object) -> str:
    """Validate one key id.

    Raises:
        InvalidType: If ``key_id`` is not a ``str``.
        ConfigurationError: If it is not 1 to 32 characters of ``[A-Za-z0-9._-]``.
    """
    if not isinstance(key_id, str):
        raise InvalidType(f"a key id must be str, not {type(key_id).__name__}")
    if not _KEY_ID.fullmatch(key_id):
        # A malformed "id" may be a pasted key: never echo it.
        raise ConfigurationError("a key id must be 1 to 32 characters of [A-Za-z0-9._-]")
    return key_id


def _encode_key(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).rstrip(b"=").decode("ascii")


def _decode_key(text: str) -> bytes | None:
    """Decode the canonical unpadded base64url form of a 32-byte key, or return ``None``."""
    if not _KEY_TEXT.fullmatch(text):
        return None
    try:
        key = base64.urlsafe_b64decode(text + "=")
    except (binascii.Error, ValueError):  # pragma: no cover - the regex already guards
        return None
    # Refuse non-canonical spellings (unused low bits set in the last character), so one
    # key has exactly one text.
    if len(key) != KEY_SIZE or _encode_key(key) != text:
        return None
    return key


def _require_bytes(value: object, name: str) -> None:
    if not isinstance(value, bytes):
        raise InvalidType(f"{name} must be bytes, not {type(value).__name__}")


@final
class Keyring:
    """An ordered set of AES-256-GCM keys: the first encrypts, all of them decrypt.

    Implements SECURITY.md 18 (AEAD at rest, record binding through associated data,
    rotation, tamper detection), SECURITY.md 19 (keyed hashes of delivered codes, via
    :meth:`mac`) and SECURITY.md 22 (no key material in ``repr``, ``str``, error messages
    or pickles). See the module documentation for the blob format and the rotation
    procedure.

    A keyring is immutable and safe to share between threads.

    Args:
        keys: ``(key_id, key)`` pairs in order, primary first. Key ids are 1 to 32
            characters of ``[A-Za-z0-9._-]`` and unique; keys are exactly 32 ``bytes``.

    Raises:
        InvalidType: If ``keys`` is not a sequence of ``(str, bytes)`` tuples.
        ConfigurationError: If ``keys`` is empty, a key id is malformed or repeated, or a
            key is not 32 bytes long.
    """

    __slots__ = (
        "_aeads",
        "_key_ids",
        "_keys",
        "_mac_keys",
        "_primary_aead",
        "_primary_header",
        "_primary_kid",
        "_primary_mac_prefix",
    )

    _aeads: dict[bytes, AESGCM]
    _key_ids: tuple[str, ...]
    _keys: dict[bytes, bytes]
    _mac_keys: dict[tuple[bytes, bytes], bytes]
    _primary_aead: AESGCM
    _primary_header: bytes
    _primary_kid: bytes
    _primary_mac_prefix: bytes

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if isinstance(keys, (str, bytes, bytearray)) or not isinstance(keys, Sequence):
            raise InvalidType(
                f"keys must be a sequence of (key_id, key) tuples, not {type(keys).__name__}"
            )
        if not keys:
            raise ConfigurationError("a keyring needs at least one key")
        key_ids: list[str] = []
        raw_keys: dict[bytes, bytes] = {}
        for position, entry in enumerate(keys, start=1):
            if not isinstance(entry, tuple) or len(entry) != 2:
                raise InvalidType(f"key entry {position} must be a (key_id, key) tuple")
            key_id, key = entry
            _check_key_id(key_id)
            if not isinstance(key, bytes):
                raise InvalidType(f"key {key_id!r} must be bytes, not {type(key).__name__}")
            if len(key) != KEY_SIZE:
                raise ConfigurationError(
                    f"key {key_id!r} must be exactly {KEY_SIZE} bytes, not {len(key)}"
                )
            kid = key_id.encode("ascii")
            if kid in raw_keys:
                raise ConfigurationError(f"key id {key_id!r} appears more than once")
            key_ids.append(key_id)
            raw_keys[kid] = bytes(key)

        # AESGCM construction is the costly part; build each once and keep it.
        self._aeads = {kid: AESGCM(key) for kid, key in raw_keys.items()}
        self._keys = raw_keys
        self._key_ids = tuple(key_ids)
        self._mac_keys = {}
        primary = key_ids[0].encode("ascii")
        self._primary_kid = primary
        self._primary_aead = self._aeads[primary]
        self._primary_header = bytes((_VERSION, len(primary))) + primary
        self._primary_mac_prefix = bytes((len(primary),)) + primary

    # -- construction -------------------------------------------------------------------

    @staticmethod
    def generate_key(key_id: str | None = None) -> str:
        """Generate a new random key as text for ``MFAKIT_KEYS``.

        Args:
            key_id: The id to give the key. By default the current UTC date and a short
                random suffix, such as ``"20250131-3fa2c1"``, which sorts by age and does
                not collide between two keys generated the same day.

        Returns:
            ``"KEYID:KEY"``, ``KEY`` being 32 random bytes in unpadded base64url.

        Raises:
            InvalidType: If ``key_id`` is not a ``str``.
            ConfigurationError: If ``key_id`` is not 1 to 32 characters of
                ``[A-Za-z0-9._-]``.
        """
        if key_id is None:
            today = _dt.datetime.now(_dt.timezone.utc)
            key_id = f"{today:%Y%m%d}-{secrets.token_hex(3)}"
        _check_key_id(key_id)
        return f"{key_id}:{_encode_key(secrets.token_bytes(KEY_SIZE))}"

    @classmethod
    def from_string(cls, text: str) -> Keyring:
        """Build a keyring from comma-separated ``KEYID:KEY`` entries, primary first.

        Whitespace around entries is ignored; empty entries are refused.

        Args:
            text: Entries as printed by :meth:`generate_key`, joined with commas.

        Returns:
            The keyring.

        Raises:
            InvalidType: If ``text`` is not a ``str``.
            ConfigurationError: If ``text`` is empty or an entry is malformed or repeats a
                key id. The message never contains key material.
        """
        return cls._parse(text, "keyring text")

    @classmethod
    def from_env(
        cls, var: str = DEFAULT_KEYS_VARIABLE, *, environ: Mapping[str, str] | None = None
    ) -> Keyring:
        """Build a keyring from an environment variable (format of :meth:`from_string`).

        Args:
            var: The variable name, ``MFAKIT_KEYS`` by default.
            environ: Where to look the variable up; :data:`os.environ` by default.

        Returns:
            The keyring.

        Raises:
            InvalidType: If ``var`` is not a ``str``.
            ConfigurationError: If the variable is missing, empty or malformed. The message
                names the variable and never contains key material.
        """
        if not isinstance(var, str):
            raise InvalidType(f"the variable name must be str, not {type(var).__name__}")
        env: Mapping[str, str] = os.environ if environ is None else environ
        value = env.get(var)
        if value is None:
            raise ConfigurationError(
                f"environment variable {var} is not set; it must hold {_ENTRY_FORMAT}"
            )
        return cls._parse(value, f"environment variable {var}")

    @classmethod
    def ephemeral(cls) -> Keyring:
        """Build a keyring with one random key that lives only in this process.

        For tests and demonstrations only, **not for production**: everything encrypted
        with it is lost when the process exits.

        Returns:
            A keyring with a single random key whose id starts with ``"ephemeral-"``.
        """
        return cls([(f"ephemeral-{secrets.token_hex(4)}", secrets.token_bytes(KEY_SIZE))])

    @classmethod
    def _parse(cls, text: object, source: str) -> Keyring:
        if not isinstance(text, str):
            raise InvalidType(f"{source} must be str, not {type(text).__name__}")
        if not text.strip():
            raise ConfigurationError(f"{source} is empty; it must hold {_ENTRY_FORMAT}")
        pairs: list[tuple[str, bytes]] = []
        seen: set[str] = set()
        for position, raw in enumerate(text.split(","), start=1):
            key_id, sep, encoded = raw.strip().partition(":")
            # Nothing of a malformed entry is echoed: it may be (part of) a key.
            if not sep or not _KEY_ID.fullmatch(key_id):
                raise ConfigurationError(
                    f"{source}: entry {position} is malformed; expected {_ENTRY_FORMAT}"
                )
            key = _decode_key(encoded)
            if key is None:
                raise ConfigurationError(
                    f"{source}: the key of entry {position} (key id {key_id!r}) is malformed; "
                    f"expected {_ENTRY_FORMAT}"
                )
            if key_id in seen:
                raise ConfigurationError(f"{source}: key id {key_id!r} appears more than once")
            seen.add(key_id)
            pairs.append((key_id, key))
        return cls(pairs)

    # -- introspection -----------------------------------------------------------------

    @property
    def key_ids(self) -> tuple[str, ...]:
        """All key ids, primary first."""
        return self._key_ids

    @property
    def primary_key_id(self) -> str:
        """The id of the key new encryptions and MACs use."""
        return self._key_ids[0]

    def __repr__(self) -> str:
        return f"Keyring(key_ids={self._key_ids!r})"

    # Pickling would write the keys wherever the pickle goes (a cache, a task queue, a
    # log); refuse it (SECURITY.md 22). Copies are pointless for an immutable object.
    def __reduce__(self) -> NoReturn:
        raise TypeError("a Keyring cannot be pickled: it would expose its keys")

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        raise TypeError("a Keyring cannot be pickled: it would expose its keys")

    def __getstate__(self) -> NoReturn:
        raise TypeError("a Keyring cannot be pickled: it would expose its keys")

    def __copy__(self) -> Keyring:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Keyring:
        return self

    # -- encryption --------------------------------------------------------------------

    def encrypt(self, plaintext: bytes, *, aad: bytes) -> bytes:
        """Encrypt under the primary key, bound to ``aad`` (SECURITY.md 18).

        Args:
            plaintext: The secret to protect.
            aad: Associated data naming the record the blob belongs to (for example
                ``b"totp_seed:" + credential_id``). The same value must be passed to
                :meth:`decrypt`.

        Returns:
            The blob (format in the module documentation).

        Raises:
            InvalidType: If ``plaintext`` or ``aad`` is not ``bytes``.
        """
        _require_bytes(plaintext, "plaintext")
        _require_bytes(aad, "aad")
        header = self._primary_header
        nonce = secrets.token_bytes(_NONCE_SIZE)
        return header + nonce + self._primary_aead.encrypt(nonce, plaintext, header + aad)

    def decrypt(self, blob: bytes, *, aad: bytes) -> bytes:
        """Decrypt a blob made by :meth:`encrypt` under any key of this keyring.

        Args:
            blob: The blob.
            aad: The associated data it was encrypted with.

        Returns:
            The plaintext.

        Raises:
            InvalidType: If ``blob`` or ``aad`` is not ``bytes``.
            DecryptionError: If the blob is truncated or garbage, has an unknown version,
                names a key this keyring does not hold, was tampered with, or was made for
                another record (different ``aad``).
        """
        _require_bytes(blob, "blob")
        _require_bytes(aad, "aad")
        end, kid = _parse_header(blob)
        aead = self._aeads.get(kid)
        if aead is None:
            raise DecryptionError(_unknown_key_message(kid))
        try:
            return aead.decrypt(
                blob[end : end + _NONCE_SIZE], blob[end + _NONCE_SIZE :], blob[:end] + aad
            )
        except InvalidTag:
            raise DecryptionError(
                f"authentication failed for a blob under key {kid.decode('ascii')!r}: it was "
                "tampered with or belongs to another record"
            ) from None

    def key_id_of(self, blob: bytes) -> str:
        """Return the id of the key a blob was encrypted under, without decrypting it.

        The key need not be in this keyring.

        Args:
            blob: A blob made by :meth:`encrypt`.

        Returns:
            The key id.

        Raises:
            InvalidType: If ``blob`` is not ``bytes``.
            DecryptionError: If the blob is truncated, garbage or of an unknown version.
        """
        _require_bytes(blob, "blob")
        _, kid = _parse_header(blob)
        key_id = kid.decode("ascii", errors="replace")
        if not _KEY_ID.fullmatch(key_id):
            raise DecryptionError("the blob's key id is malformed")
        return key_id

    def needs_rotation(self, blob: bytes) -> bool:
        """Tell whether a blob is under a key other than the primary.

        Args:
            blob: A blob made by :meth:`encrypt`.

        Returns:
            ``True`` when :meth:`rotate` would move the blob to another key.

        Raises:
            InvalidType: If ``blob`` is not ``bytes``.
            DecryptionError: If the blob is truncated, garbage or of an unknown version.
        """
        _require_bytes(blob, "blob")
        _, kid = _parse_header(blob)
        return kid != self._primary_kid

    def rotate(self, blob: bytes, *, aad: bytes) -> bytes:
        """Re-encrypt a blob under the primary key.

        The blob is decrypted (and so authenticated) with whichever key it names and
        encrypted again under the primary key with a fresh nonce. This happens even when it
        already is under the primary key, so the result always differs from the input; a
        re-encryption job should call :meth:`needs_rotation` first to skip needless writes.

        Args:
            blob: A blob made by :meth:`encrypt`.
            aad: The associated data it was encrypted with; the new blob keeps it.

        Returns:
            A new blob under the primary key.

        Raises:
            InvalidType: If ``blob`` or ``aad`` is not ``bytes``.
            DecryptionError: As :meth:`decrypt`.
        """
        return self.encrypt(self.decrypt(blob, aad=aad), aad=aad)

    # -- keyed hashes ------------------------------------------------------------------

    def mac(self, data: bytes, *, purpose: bytes) -> bytes:
        """Compute a keyed hash of ``data`` under the primary key (SECURITY.md 19).

        HMAC-SHA256 under ``HKDF-SHA256(key, info=b"mfakit mac " + purpose)``: the AES key
        itself never keys an HMAC, and each purpose has an independent subkey.

        Args:
            data: What to authenticate, for example a delivered code and its challenge id.
            purpose: A constant naming the use, for example ``b"sms-code"``.

        Returns:
            ``kidlen (1 byte) || key id || HMAC (32 bytes)``.

        Raises:
            InvalidType: If ``data`` or ``purpose`` is not ``bytes``.
            InvalidInput: If ``purpose`` is empty.
        """
        _check_mac_args(data, purpose)
        kid = self._primary_kid
        subkey = self._mac_key(kid, self._keys[kid], purpose)
        return self._primary_mac_prefix + hmac.digest(subkey, data, "sha256")

    def verify_mac(self, tag: bytes, data: bytes, *, purpose: bytes) -> bool:
        """Check a tag made by :meth:`mac` under any key of this keyring.

        The comparison is constant-time (:func:`hmac.compare_digest`).

        Args:
            tag: The stored tag.
            data: The data to check it against.
            purpose: The purpose it was made for.

        Returns:
            ``True`` if the tag is valid for ``data`` and ``purpose``; ``False`` otherwise,
            including for a malformed tag or one under a key this keyring does not hold.

        Raises:
            InvalidType: If ``tag``, ``data`` or ``purpose`` is not ``bytes``.
            InvalidInput: If ``purpose`` is empty.
        """
        _require_bytes(tag, "tag")
        _check_mac_args(data, purpose)
        if not tag:
            return False
        end = 1 + tag[0]
        if len(tag) != end + _MAC_SIZE:
            return False
        kid = tag[1:end]
        key = self._keys.get(kid)
        if key is None:
            return False
        subkey = self._mac_key(kid, key, purpose)
        return hmac.compare_digest(hmac.digest(subkey, data, "sha256"), tag[end:])

    def _mac_key(self, kid: bytes, key: bytes, purpose: bytes) -> bytes:
        """Return the HKDF-SHA256 subkey of ``key`` (id ``kid``) for ``purpose``, cached."""
        cache_key = (kid, purpose)
        subkey = self._mac_keys.get(cache_key)
        if subkey is None:
            subkey = HKDF(
                algorithm=hashes.SHA256(), length=_MAC_SIZE, salt=None, info=_MAC_INFO + purpose
            ).derive(key)
            # A racing thread may derive the same value; the last write wins harmlessly.
            if len(self._mac_keys) < _MAC_CACHE_LIMIT:
                self._mac_keys[cache_key] = subkey
        return subkey


def _parse_header(blob: bytes) -> tuple[int, bytes]:
    """Split a blob's header: return (header length, key id bytes).

    Raises:
        DecryptionError: If the blob is too short or of an unknown version.
    """
    if len(blob) < 2:
        raise DecryptionError("the blob is truncated or not a mfakit secret box")
    if blob[0] != _VERSION:
        raise DecryptionError("the blob has an unsupported format version")
    end = 2 + blob[1]
    if len(blob) < end + _NONCE_SIZE + _TAG_SIZE:
        raise DecryptionError("the blob is truncated or not a mfakit secret box")
    return end, blob[2:end]


def _unknown_key_message(kid: bytes) -> str:
    key_id = kid.decode("ascii", errors="replace")
    if _KEY_ID.fullmatch(key_id):
        return f"the blob is under key id {key_id!r}, which is not in this keyring"
    return "the blob's key id is malformed"


def _check_mac_args(data: object, purpose: object) -> None:
    _require_bytes(data, "data")
    _require_bytes(purpose, "purpose")
    if not purpose:
        raise InvalidInput("a MAC purpose must not be empty")
