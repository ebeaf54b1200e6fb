"""Encryption of secrets at rest: Fernet under a MultiFernet key list, newest key first.

The key list comes from settings.ENCRYPTION_KEYS (env MCPCONTROL_ENCRYPTION_KEYS). Values are
encrypted with the first key and decrypted with any, so keys can be rotated without downtime:
add a new key in front, run `manage.py rotate_encryption_keys` (online, resumable), then drop
the old key once it reports that every value decrypts with the newest key alone.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
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
