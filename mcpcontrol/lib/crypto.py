"""Encryption of secrets at rest: Fernet under a MultiFernet key list, newest key first.

The key list comes from settings.ENCRYPTION_KEYS (env MCPCONTROL_ENCRYPTION_KEYS). Values are
encrypted with the first key and decrypted with any, so keys can be rotated without downtime:
add a new key in front, run `manage.py rotate_encryption_keys` (online, resumable), then drop
the old key once it reports that every value decrypts with the newest key alone.
"""

import base64
import binascii
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from django.conf import settings


class DecryptionError(Exception):
    """A stored secret could not be decrypted with any configured key.

    Raised instead of ever handing back ciphertext where plaintext was expected.
    """


@lru_cache(maxsize=4)
def _multi_fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(k) for k in keys])


def _fernet() -> MultiFernet:
    return _multi_fernet(tuple(settings.ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


@contextmanager
def _readable() -> Iterator[None]:
    try:
        yield
    except (InvalidToken, ValueError, TypeError):
        # Never include the ciphertext: it is useless to a reader and noisy in logs.
        raise DecryptionError(
            "stored secret cannot be decrypted with the configured MCPCONTROL_ENCRYPTION_KEYS"
        ) from None


def decrypt(ciphertext: str) -> str:
    with _readable():
        return _fernet().decrypt(ciphertext.encode()).decode()


@lru_cache(maxsize=4)
def _single_fernet(key: str) -> Fernet:
    return Fernet(key)


def is_current(ciphertext: str) -> bool:
    """Whether the newest key alone decrypts it: then no older key is needed for it."""
    try:
        _single_fernet(settings.ENCRYPTION_KEYS[0]).decrypt(ciphertext.encode())
    except (InvalidToken, ValueError, TypeError):
        return False
    return True


def rotate(ciphertext: str) -> str:
    """Re-encrypt under the newest key (raises DecryptionError if no key can read it)."""
    with _readable():
        return _fernet().rotate(ciphertext.encode()).decode()


# --- Token values shared with another application (MCPCONTROL_TOKEN_CODEC=creds-aes-cbc) ----
#
# Seed 004 ("Security Considerations") stores a tokens-collection value as AES-256-CBC under
# CREDS_KEY with the fixed IV CREDS_IV, PKCS7 padding, base64: that is what we write. LibreChat
# (api/server/utils/crypto.js) reads and writes the same cipher with hex output (`encrypt`) or
# with a random IV as "<iv hex>:<ciphertext hex>" (`encryptV2`); we read all three. Weaker than
# Fernet: the fixed IV shows equal values as equal ciphertexts, and nothing detects tampering.
TOKEN_CODEC_FERNET = "fernet"
TOKEN_CODEC_CREDS = "creds-aes-cbc"
_HEX = frozenset("0123456789abcdefABCDEF")


def token_codec_shared() -> bool:
    """Whether token values are written in the shared CREDS_KEY/CREDS_IV format."""
    return bool(settings.TOKEN_CODEC == TOKEN_CODEC_CREDS)


def creds_encrypt(plaintext: str, *, key: bytes, iv: bytes) -> str:
    padder = padding.PKCS7(128).padder()
    data = padder.update(plaintext.encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return base64.b64encode(encryptor.update(data) + encryptor.finalize()).decode()


def _creds_open(raw: bytes, *, key: bytes, iv: bytes) -> str:
    if not raw or len(raw) % 16:
        raise ValueError("not whole AES blocks")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    data = unpadder.update(decryptor.update(raw) + decryptor.finalize()) + unpadder.finalize()
    return data.decode()  # UnicodeDecodeError is a ValueError


def _creds_candidates(value: str, iv: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(ciphertext, iv) readings of a stored value: hex forms first, as a base64 reading of a
    hex string is almost never whole blocks with valid padding."""
    head, sep, tail = value.partition(":")
    if sep and len(head) == 32 and set(head) <= _HEX and tail and set(tail) <= _HEX:
        yield bytes.fromhex(tail), bytes.fromhex(head)  # LibreChat encryptV2
    if set(value) <= _HEX and len(value) % 2 == 0:
        yield bytes.fromhex(value), iv  # LibreChat encrypt
    try:
        yield base64.b64decode(value, validate=True), iv  # seed 004
    except binascii.Error:
        return


def creds_decrypt(value: str, *, key: bytes, iv: bytes) -> str:
    """Read any of the three shared formats; raises ValueError if none opens it."""
    for raw, this_iv in _creds_candidates(value, iv):
        try:
            return _creds_open(raw, key=key, iv=this_iv)
        except ValueError:
            continue
    raise ValueError("not a CREDS_KEY/CREDS_IV value")


def _creds() -> tuple[bytes, bytes]:
    return bytes.fromhex(settings.CREDS_KEY), bytes.fromhex(settings.CREDS_IV)


def token_encrypt(plaintext: str) -> str:
    if not token_codec_shared():
        return encrypt(plaintext)
    key, iv = _creds()
    return creds_encrypt(plaintext, key=key, iv=iv)


def token_decrypt(ciphertext: str) -> str:
    """A token value, in Fernet (authenticated, so tried first: it never misreads) or, with the
    shared codec on, in the shared format. With the default codec a value in the shared format
    is unreadable (DecryptionError), for its own row only."""
    try:
        return decrypt(ciphertext)
    except DecryptionError:
        if not token_codec_shared():
            raise
    key, iv = _creds()
    try:
        return creds_decrypt(ciphertext, key=key, iv=iv)
    except ValueError:
        raise DecryptionError(
            "stored token cannot be decrypted with MCPCONTROL_ENCRYPTION_KEYS or CREDS_KEY/CREDS_IV"
        ) from None
