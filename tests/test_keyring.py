"""Tests for the AES-256-GCM keyring (SECURITY.md 18, 19, 22)."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import pickle
import re
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given
from hypothesis import strategies as st

from mfakit.exceptions import (
    ConfigurationError,
    DecryptionError,
    InvalidInput,
    InvalidType,
    KeyringError,
    MFAError,
)
from mfakit.hazmat.secretbox import KEY_SIZE, Keyring

KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))
SEED = b"12345678901234567890"
AAD = b"totp_seed:cred-1"

# Module-level so hypothesis does not re-create it per example.
RING = Keyring([("a", KEY_A)])


def key_text(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).rstrip(b"=").decode("ascii")


def spellings(key: bytes) -> list[str]:
    """Every way a key could leak into text."""
    return [
        key.hex(),
        key.hex().upper(),
        repr(key),
        base64.b64encode(key).decode(),
        base64.urlsafe_b64encode(key).decode(),
        key_text(key),
    ]


def assert_no_key(text: str, *keys: bytes) -> None:
    for key in keys:
        for spelling in spellings(key):
            assert spelling not in text


# -- encryption ------------------------------------------------------------------------


@given(plaintext=st.binary(max_size=512), aad=st.binary(max_size=128))
def test_round_trip_property(plaintext: bytes, aad: bytes) -> None:
    blob = RING.encrypt(plaintext, aad=aad)
    assert RING.decrypt(blob, aad=aad) == plaintext
    assert len(blob) == 1 + 1 + 1 + 12 + len(plaintext) + 16


@given(plaintext=st.binary(max_size=64), aad=st.binary(max_size=32), other=st.binary(max_size=32))
def test_other_aad_always_fails_property(plaintext: bytes, aad: bytes, other: bytes) -> None:
    blob = RING.encrypt(plaintext, aad=aad)
    if other != aad:
        with pytest.raises(DecryptionError):
            RING.decrypt(blob, aad=other)


def test_blob_layout() -> None:
    ring = Keyring([("key-1", KEY_A)])
    blob = ring.encrypt(SEED, aad=AAD)
    assert blob[0] == 0x01
    assert blob[1] == len(b"key-1")
    assert blob[2:7] == b"key-1"
    assert len(blob) == 7 + 12 + len(SEED) + 16


def test_blob_does_not_contain_plaintext() -> None:
    blob = RING.encrypt(SEED, aad=AAD)
    assert SEED not in blob
    assert SEED[:8] not in blob


def test_nonce_is_fresh_each_time() -> None:
    blobs = {RING.encrypt(SEED, aad=AAD) for _ in range(50)}
    assert len(blobs) == 50
    assert len({blob[3:15] for blob in blobs}) == 50


def test_blob_moved_to_another_record_fails() -> None:
    blob = RING.encrypt(SEED, aad=b"totp_seed:cred-1")
    with pytest.raises(DecryptionError) as info:
        RING.decrypt(blob, aad=b"totp_seed:cred-2")
    assert isinstance(info.value, KeyringError)
    with pytest.raises(DecryptionError):
        RING.decrypt(blob, aad=b"")


@pytest.mark.parametrize("mask", [0x01, 0x80, 0xFF])
def test_every_single_byte_flip_fails(mask: int) -> None:
    blob = RING.encrypt(SEED, aad=AAD)
    for position in range(len(blob)):
        tampered = bytearray(blob)
        tampered[position] ^= mask
        with pytest.raises(DecryptionError):
            RING.decrypt(bytes(tampered), aad=AAD)


def test_every_truncation_and_extension_fails() -> None:
    blob = RING.encrypt(SEED, aad=AAD)
    for length in range(len(blob)):
        with pytest.raises(DecryptionError):
            RING.decrypt(blob[:length], aad=AAD)
    with pytest.raises(DecryptionError):
        RING.decrypt(blob + b"\x00", aad=AAD)


@pytest.mark.parametrize(
    "garbage",
    [b"", b"\x01", b"\x00" * 64, b"\x02\x01a" + b"\x00" * 40, b"\x01\xff" + b"a" * 40],
)
def test_garbage_fails(garbage: bytes) -> None:
    with pytest.raises(DecryptionError):
        RING.decrypt(garbage, aad=AAD)


def test_header_is_authenticated_even_when_the_key_matches() -> None:
    # The same key under two ids: rewriting the id in the header must still fail, because
    # the header is part of the associated data.
    ring = Keyring([("ka", KEY_A), ("kb", KEY_A)])
    blob = ring.encrypt(SEED, aad=AAD)
    assert blob[2:4] == b"ka"
    rewritten = blob[:2] + b"kb" + blob[4:]
    assert ring.key_id_of(rewritten) == "kb"
    with pytest.raises(DecryptionError):
        ring.decrypt(rewritten, aad=AAD)


def test_unknown_key_id_fails_and_names_only_the_id() -> None:
    blob = Keyring([("old", KEY_A)]).encrypt(SEED, aad=AAD)
    with pytest.raises(DecryptionError) as info:
        Keyring([("new", KEY_B)]).decrypt(blob, aad=AAD)
    message = str(info.value)
    assert "'old'" in message
    assert_no_key(message, KEY_A, KEY_B)
    assert blob.hex() not in message


def test_wrong_key_under_same_id_fails() -> None:
    blob = Keyring([("k", KEY_A)]).encrypt(SEED, aad=AAD)
    with pytest.raises(DecryptionError) as info:
        Keyring([("k", KEY_B)]).decrypt(blob, aad=AAD)
    message = str(info.value)
    assert_no_key(message, KEY_A, KEY_B)
    assert SEED.decode() not in message


def test_empty_plaintext_round_trips() -> None:
    blob = RING.encrypt(b"", aad=AAD)
    assert RING.decrypt(blob, aad=AAD) == b""


# -- rotation --------------------------------------------------------------------------


def test_old_blob_decrypts_after_adding_a_new_primary() -> None:
    old_ring = Keyring([("old", KEY_A)])
    blob = old_ring.encrypt(SEED, aad=AAD)
    rotated_ring = Keyring([("new", KEY_B), ("old", KEY_A)])
    assert rotated_ring.decrypt(blob, aad=AAD) == SEED
    assert rotated_ring.key_id_of(rotated_ring.encrypt(SEED, aad=AAD)) == "new"


def test_rotate_moves_blob_to_primary() -> None:
    blob = Keyring([("old", KEY_A)]).encrypt(SEED, aad=AAD)
    ring = Keyring([("new", KEY_B), ("old", KEY_A)])
    assert ring.needs_rotation(blob)
    assert ring.key_id_of(blob) == "old"

    rotated = ring.rotate(blob, aad=AAD)
    assert ring.key_id_of(rotated) == "new"
    assert not ring.needs_rotation(rotated)
    assert Keyring([("new", KEY_B)]).decrypt(rotated, aad=AAD) == SEED
    # The rotated blob stays bound to its record.
    with pytest.raises(DecryptionError):
        ring.decrypt(rotated, aad=b"other record")


def test_rotate_refuses_tampered_or_misbound_blob() -> None:
    ring = Keyring([("new", KEY_B), ("old", KEY_A)])
    blob = Keyring([("old", KEY_A)]).encrypt(SEED, aad=AAD)
    with pytest.raises(DecryptionError):
        ring.rotate(blob, aad=b"other record")
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(DecryptionError):
        ring.rotate(tampered, aad=AAD)


def test_rotate_under_primary_reencrypts() -> None:
    blob = RING.encrypt(SEED, aad=AAD)
    assert not RING.needs_rotation(blob)
    again = RING.rotate(blob, aad=AAD)
    assert again != blob
    assert RING.decrypt(again, aad=AAD) == SEED


def test_needs_rotation_and_key_id_of_refuse_garbage() -> None:
    with pytest.raises(DecryptionError):
        RING.needs_rotation(b"\x07garbage" + b"\x00" * 40)
    with pytest.raises(DecryptionError):
        RING.key_id_of(b"\x01")
    with pytest.raises(DecryptionError):
        RING.key_id_of(b"\x01\x02\xff\xfe" + b"\x00" * 40)


# -- construction and configuration ---------------------------------------------------


def test_properties_and_primary() -> None:
    ring = Keyring([("k2", KEY_B), ("k1", KEY_A)])
    assert ring.key_ids == ("k2", "k1")
    assert ring.primary_key_id == "k2"


@pytest.mark.parametrize(
    ("keys", "error"),
    [
        ([], ConfigurationError),
        ([("a", KEY_A), ("a", KEY_B)], ConfigurationError),
        ([("", KEY_A)], ConfigurationError),
        ([("x" * 33, KEY_A)], ConfigurationError),
        ([("has space", KEY_A)], ConfigurationError),
        ([("colon:", KEY_A)], ConfigurationError),
        ([("caf\u00e9", KEY_A)], ConfigurationError),
        ([("a", KEY_A[:31])], ConfigurationError),
        ([("a", KEY_A + b"\x00")], ConfigurationError),
        ([("a", KEY_A.hex())], InvalidType),
        ([("a", bytearray(KEY_A))], InvalidType),
        ([(b"a", KEY_A)], InvalidType),
        ([["a", KEY_A]], InvalidType),
        ([("a", KEY_A, "extra")], InvalidType),
        ("a:key", InvalidType),
        (KEY_A, InvalidType),
        (None, InvalidType),
    ],
)
def test_constructor_validation(keys: object, error: type[MFAError]) -> None:
    with pytest.raises(error) as info:
        Keyring(keys)  # type: ignore[arg-type]
    assert_no_key(str(info.value), KEY_A, KEY_B)


def test_key_id_limits_accepted() -> None:
    ring = Keyring([("A-z.0_9" + "x" * 25, KEY_A), ("1", KEY_B)])
    assert ring.key_ids == ("A-z.0_9" + "x" * 25, "1")


def test_generate_key_format_and_uniqueness() -> None:
    texts = [Keyring.generate_key() for _ in range(50)]
    pattern = re.compile(r"(\d{8}-[0-9a-f]{6}):([A-Za-z0-9_-]{43})")
    ids = set()
    keys = set()
    for text in texts:
        match = pattern.fullmatch(text)
        assert match is not None, "unexpected format"
        ids.add(match[1])
        key = base64.urlsafe_b64decode(match[2] + "=")
        assert len(key) == KEY_SIZE
        keys.add(key)
    assert len(ids) == 50
    assert len(keys) == 50


def test_generate_key_with_id_round_trips() -> None:
    text = Keyring.generate_key("prod-2025")
    assert text.startswith("prod-2025:")
    ring = Keyring.from_string(text)
    assert ring.key_ids == ("prod-2025",)
    assert ring.decrypt(ring.encrypt(SEED, aad=AAD), aad=AAD) == SEED


def test_generate_key_refuses_bad_id() -> None:
    with pytest.raises(ConfigurationError):
        Keyring.generate_key("bad id")
    with pytest.raises(InvalidType):
        Keyring.generate_key(b"id")  # type: ignore[arg-type]


def test_from_env_parses_entries_in_order() -> None:
    value = f"  new:{key_text(KEY_B)} ,\n old:{key_text(KEY_A)}  "
    ring = Keyring.from_env(environ={"MFAKIT_KEYS": value})
    assert ring.key_ids == ("new", "old")
    assert ring.primary_key_id == "new"
    blob = Keyring([("old", KEY_A)]).encrypt(SEED, aad=AAD)
    assert ring.decrypt(blob, aad=AAD) == SEED
    assert Keyring([("new", KEY_B)]).decrypt(ring.encrypt(SEED, aad=AAD), aad=AAD) == SEED


def test_from_env_reads_os_environ_and_custom_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEYS", f"k:{key_text(KEY_A)}")
    assert Keyring.from_env("MY_KEYS").key_ids == ("k",)
    monkeypatch.setenv("MFAKIT_KEYS", f"d:{key_text(KEY_B)}")
    assert Keyring.from_env().key_ids == ("d",)


def test_from_env_missing_names_variable() -> None:
    with pytest.raises(ConfigurationError, match="MFAKIT_KEYS"):
        Keyring.from_env(environ={})
    with pytest.raises(ConfigurationError, match="OTHER_VAR"):
        Keyring.from_env("OTHER_VAR", environ={"MFAKIT_KEYS": f"k:{key_text(KEY_A)}"})


GOOD_A = key_text(KEY_A)
GOOD_B = key_text(KEY_B)
NON_CANONICAL = GOOD_A[:-1] + chr(ord(GOOD_A[-1]) + 1)  # unused low bits set


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        GOOD_A,  # no key id
        f":{GOOD_A}",
        f"bad id:{GOOD_A}",
        f"{'x' * 33}:{GOOD_A}",
        f"k : {GOOD_A}",
        f"k:{GOOD_A}=",  # padded
        f"k:{GOOD_A[:-1]}",  # 31.x bytes
        f"k:{GOOD_A}A",  # too long
        f"k:{GOOD_A[:-2]}+/",  # standard alphabet
        f"k:{KEY_A.hex()}",
        f"k:{NON_CANONICAL}",
        f"k:{GOOD_A},",  # empty trailing entry
        f"k:{GOOD_A},,j:{GOOD_B}",
        f"k:{GOOD_A},k:{GOOD_B}",  # duplicate id
        f"k:{GOOD_A};j:{GOOD_B}",
    ],
)
def test_from_env_malformed_never_echoes_key(value: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Keyring.from_env(environ={"MFAKIT_KEYS": value})
    message = str(info.value)
    assert "MFAKIT_KEYS" in message
    assert_no_key(message, KEY_A, KEY_B)
    assert GOOD_A[:20] not in message
    assert GOOD_B[:20] not in message
    assert NON_CANONICAL not in message
    assert KEY_A.hex()[:20] not in message


def test_non_canonical_really_decodes_to_the_same_bytes() -> None:
    # Guards the previous test: the non-canonical text is refused on purpose, not by luck.
    assert base64.urlsafe_b64decode(NON_CANONICAL + "=") == KEY_A


def test_from_string_and_its_errors() -> None:
    ring = Keyring.from_string(f"a:{GOOD_A},b:{GOOD_B}")
    assert ring.key_ids == ("a", "b")
    with pytest.raises(ConfigurationError) as info:
        Keyring.from_string(f"a:{GOOD_A[:-3]}")
    assert_no_key(str(info.value), KEY_A)
    with pytest.raises(InvalidType):
        Keyring.from_string(GOOD_A.encode())  # type: ignore[arg-type]
    with pytest.raises(InvalidType):
        Keyring.from_env(b"MFAKIT_KEYS")  # type: ignore[arg-type]


def test_ephemeral() -> None:
    one, two = Keyring.ephemeral(), Keyring.ephemeral()
    assert len(one.key_ids) == 1
    assert one.primary_key_id.startswith("ephemeral-")
    assert one.key_ids != two.key_ids
    blob = one.encrypt(SEED, aad=AAD)
    assert one.decrypt(blob, aad=AAD) == SEED
    with pytest.raises(DecryptionError):
        two.decrypt(blob, aad=AAD)


# -- no leaks --------------------------------------------------------------------------


def test_repr_and_str_show_only_key_ids() -> None:
    ring = Keyring([("k2", KEY_B), ("k1", KEY_A)])
    assert repr(ring) == "Keyring(key_ids=('k2', 'k1'))"
    assert str(ring) == repr(ring)
    assert_no_key(repr(ring), KEY_A, KEY_B)
    assert_no_key(f"{ring!s} {ring!r} {ring}", KEY_A, KEY_B)


def test_no_instance_dict() -> None:
    ring = Keyring([("k", KEY_A)])
    assert not hasattr(ring, "__dict__")
    with pytest.raises(AttributeError):
        ring.extra = 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_cannot_be_pickled(protocol: int) -> None:
    with pytest.raises(TypeError):
        pickle.dumps(RING, protocol=protocol)


def test_copies_are_the_same_object() -> None:
    assert copy.copy(RING) is RING
    assert copy.deepcopy({"ring": RING})["ring"] is RING


# -- keyed hashes ----------------------------------------------------------------------


def expected_tag(key: bytes, kid: bytes, data: bytes, purpose: bytes) -> bytes:
    subkey = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"mfakit mac " + purpose
    ).derive(key)
    return bytes([len(kid)]) + kid + hmac.new(subkey, data, hashlib.sha256).digest()


def test_mac_matches_spec_and_never_uses_aes_key_directly() -> None:
    ring = Keyring([("k1", KEY_A)])
    tag = ring.mac(b"123456|challenge-1", purpose=b"sms-code")
    assert tag == expected_tag(KEY_A, b"k1", b"123456|challenge-1", b"sms-code")
    assert len(tag) == 1 + 2 + 32
    assert tag[3:] != hmac.new(KEY_A, b"123456|challenge-1", hashlib.sha256).digest()
    assert b"123456" not in tag


def test_mac_is_deterministic_and_cached_subkey_is_stable() -> None:
    ring = Keyring([("k1", KEY_A)])
    assert ring.mac(b"x", purpose=b"p") == ring.mac(b"x", purpose=b"p")
    assert ring.mac(b"x", purpose=b"p") != ring.mac(b"x", purpose=b"q")


def test_verify_mac() -> None:
    tag = RING.mac(b"123456", purpose=b"sms-code")
    assert RING.verify_mac(tag, b"123456", purpose=b"sms-code") is True
    assert RING.verify_mac(tag, b"123457", purpose=b"sms-code") is False
    assert RING.verify_mac(tag, b"123456", purpose=b"email-code") is False


def test_verify_mac_after_rotation() -> None:
    old_tag = Keyring([("old", KEY_A)]).mac(b"code", purpose=b"p")
    ring = Keyring([("new", KEY_B), ("old", KEY_A)])
    assert ring.verify_mac(old_tag, b"code", purpose=b"p")
    new_tag = ring.mac(b"code", purpose=b"p")
    assert new_tag[1:4] == b"new"
    assert ring.verify_mac(new_tag, b"code", purpose=b"p")
    # Once the old key is removed, old tags no longer verify (and do not raise).
    assert Keyring([("new", KEY_B)]).verify_mac(old_tag, b"code", purpose=b"p") is False


def test_verify_mac_kid_swap_fails() -> None:
    ring = Keyring([("ka", KEY_A), ("kb", KEY_B)])
    tag = ring.mac(b"code", purpose=b"p")
    swapped = tag[:1] + b"kb" + tag[3:]
    assert ring.verify_mac(swapped, b"code", purpose=b"p") is False


def test_verify_mac_malformed_tags_are_false() -> None:
    tag = RING.mac(b"code", purpose=b"p")
    malformed = [
        b"",
        b"\x00",
        tag[:-1],
        tag + b"\x00",
        tag[:1],
        b"\xff" + tag[1:],
        b"\x00" + tag[1:],
        bytes([1]) + b"z" + tag[2:],  # unknown key id
        b"\x01a",
        b"\x01a" + b"\x00" * 32,
    ]
    for position in range(len(tag)):
        flipped = bytearray(tag)
        flipped[position] ^= 0x01
        malformed.append(bytes(flipped))
    for bad in malformed:
        assert RING.verify_mac(bad, b"code", purpose=b"p") is False


def test_mac_argument_validation() -> None:
    with pytest.raises(InvalidType):
        RING.mac("code", purpose=b"p")  # type: ignore[arg-type]
    with pytest.raises(InvalidType):
        RING.mac(b"code", purpose="p")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        RING.mac(b"code", purpose=b"")
    with pytest.raises(InvalidType):
        RING.verify_mac("tag", b"code", purpose=b"p")  # type: ignore[arg-type]
    with pytest.raises(InvalidType):
        RING.verify_mac(b"tag", "code", purpose=b"p")  # type: ignore[arg-type]


# -- types -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda: RING.encrypt("seed", aad=AAD),  # type: ignore[arg-type]
        lambda: RING.encrypt(bytearray(SEED), aad=AAD),  # type: ignore[arg-type]
        lambda: RING.encrypt(SEED, aad="record"),  # type: ignore[arg-type]
        lambda: RING.decrypt("blob", aad=AAD),  # type: ignore[arg-type]
        lambda: RING.decrypt(RING.encrypt(SEED, aad=AAD), aad=None),  # type: ignore[arg-type]
        lambda: RING.rotate(memoryview(b"x"), aad=AAD),  # type: ignore[arg-type]
        lambda: RING.key_id_of("blob"),  # type: ignore[arg-type]
        lambda: RING.needs_rotation(None),  # type: ignore[arg-type]
    ],
)
def test_wrong_types_raise_invalid_type(call: Callable[[], object]) -> None:
    with pytest.raises(InvalidType) as info:
        call()
    assert isinstance(info.value, MFAError)
    assert isinstance(info.value, TypeError)
