"""MCPCONTROL_TOKEN_CODEC=creds-aes-cbc: token values another application sharing the tokens
table reads and writes (seed 004 "Security Considerations"), checked against an independent
implementation of that format written here; and, with the default codec, a value in that
format (or any unreadable one) degrades its own row only."""

import base64
import secrets

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from django.test import Client

from mcpcontrol.lib.fields import Sealed
from tests.factories import TokenFactory
from tests.test_settings import start
from tokens.admin import UNREADABLE
from tokens.models import Token

pytestmark = pytest.mark.django_db

KEY_HEX = secrets.token_hex(32)
IV_HEX = secrets.token_hex(16)
VALUE = "gho_shared-with-librechat-é"


# --- The other application's side: the seed's TokenEncryption, with `cryptography` ----------
def their_encrypt(plaintext: str, *, encoding: str = "base64") -> str:
    padder = padding.PKCS7(algorithms.AES.block_size).padder()
    padded = padder.update(plaintext.encode("utf-8")) + padder.finalize()
    cipher = Cipher(algorithms.AES(bytes.fromhex(KEY_HEX)), modes.CBC(bytes.fromhex(IV_HEX)))
    encryptor = cipher.encryptor()
    raw = encryptor.update(padded) + encryptor.finalize()
    return base64.b64encode(raw).decode() if encoding == "base64" else raw.hex()


def their_decrypt(stored: str) -> str:
    cipher = Cipher(algorithms.AES(bytes.fromhex(KEY_HEX)), modes.CBC(bytes.fromhex(IV_HEX)))
    decryptor = cipher.decryptor()
    padded = decryptor.update(base64.b64decode(stored)) + decryptor.finalize()
    unpadder = padding.PKCS7(algorithms.AES.block_size).unpadder()
    return (unpadder.update(padded) + unpadder.finalize()).decode("utf-8")


def their_encrypt_v2(plaintext: str) -> str:
    """LibreChat's encryptV2: a random IV per value, stored as "<iv hex>:<ciphertext hex>"."""
    iv = secrets.token_bytes(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext.encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(bytes.fromhex(KEY_HEX)), modes.CBC(iv)).encryptor()
    return f"{iv.hex()}:{(encryptor.update(padded) + encryptor.finalize()).hex()}"


def stored(token: Token) -> str:
    """The raw column value, as the other application sees it."""
    return Token.objects.filter(pk=token.pk).values_list("token", flat=True).get().ciphertext


def write_theirs(token: Token, value: str) -> None:
    Token.objects.filter(pk=token.pk).update(token=Sealed(value))


@pytest.fixture
def shared_codec(settings):
    settings.TOKEN_CODEC = "creds-aes-cbc"
    settings.CREDS_KEY, settings.CREDS_IV = KEY_HEX, IV_HEX


def test_the_other_application_reads_a_value_we_wrote(shared_codec, user_api, user):
    user_api.post("/api/v1/tokens", {"type": "api_key", "identifier": "gh", "token": VALUE},
                  format="json")  # fmt: skip
    assert their_decrypt(stored(Token.objects.get(user=user))) == VALUE


def test_we_write_exactly_the_seeds_format(shared_codec, user):
    token = TokenFactory(user=user, token=VALUE)
    assert stored(token) == their_encrypt(VALUE)


@pytest.mark.parametrize("written", [their_encrypt, lambda v: their_encrypt(v, encoding="hex"),
                                     their_encrypt_v2], ids=["seed-base64", "hex", "v2"])  # fmt: skip
def test_we_read_a_value_the_other_application_wrote(shared_codec, user_api, user, written):
    token = TokenFactory(user=user, token="placeholder")
    write_theirs(token, written(VALUE))

    response = user_api.get(f"/api/v1/tokens/{token.pk}")

    assert response.status_code == 200
    assert response.json()["token"] == VALUE


def test_a_value_written_before_the_codec_was_switched_on_still_reads(settings, user):
    token = TokenFactory(user=user, token=VALUE)  # Fernet, the default
    settings.TOKEN_CODEC, settings.CREDS_KEY, settings.CREDS_IV = "creds-aes-cbc", KEY_HEX, IV_HEX
    assert Token.objects.get(pk=token.pk).token.reveal() == VALUE


def test_without_the_codec_a_shared_value_is_unreadable_for_its_row_only(user_api, user):
    theirs = TokenFactory(user=user, identifier="theirs", token="x")
    write_theirs(theirs, their_encrypt(VALUE))
    ours = TokenFactory(user=user, identifier="ours", token=VALUE)

    detail = user_api.get(f"/api/v1/tokens/{theirs.pk}")
    listing = user_api.get("/api/v1/tokens")

    assert detail.status_code == 200
    assert detail.json()["token"] is None
    assert detail.json()["unreadable"] is True
    assert "cannot be decrypted" in detail.json()["error"]
    rows = {row["identifier"]: row for row in listing.json()["tokens"]}
    assert listing.status_code == 200
    assert rows["theirs"]["unreadable"] is True
    assert rows["ours"]["unreadable"] is False
    assert user_api.get(f"/api/v1/tokens/{ours.pk}").json()["token"] == VALUE


def test_the_admin_marks_an_unreadable_value_and_still_lists_the_others(admin_user, user):
    theirs = TokenFactory(user=user, identifier="theirs", token="x")
    write_theirs(theirs, "not-any-ciphertext")
    TokenFactory(user=user, identifier="ours", token=VALUE)
    client = Client()
    client.force_login(admin_user)

    listing = client.get("/admin/tokens/token/")
    change = client.get(f"/admin/tokens/token/{theirs.pk}/change/")

    assert listing.status_code == 200
    assert listing.content.decode().count(UNREADABLE) == 1
    assert change.status_code == 200
    assert UNREADABLE in change.content.decode()


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, "CREDS_KEY"),
        ({"CREDS_KEY": "ab" * 31, "CREDS_IV": IV_HEX}, "CREDS_KEY"),
        ({"CREDS_KEY": KEY_HEX}, "CREDS_IV"),
        ({"CREDS_KEY": KEY_HEX, "CREDS_IV": "zz" * 16}, "CREDS_IV"),
    ],
)
def test_the_codec_is_refused_at_start_up_without_valid_keys(env, named):
    result = start(MCPCONTROL_TOKEN_CODEC="creds-aes-cbc", **env)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert named in result.stderr
    assert "MCPCONTROL_TOKEN_CODEC" in result.stderr


def test_an_unknown_codec_is_refused_at_start_up():
    result = start(MCPCONTROL_TOKEN_CODEC="rot13")
    assert result.returncode != 0
    assert "MCPCONTROL_TOKEN_CODEC must be" in result.stderr


def test_the_codec_starts_with_valid_keys():
    code = "from django.conf import settings; print(settings.TOKEN_CODEC)"
    result = start(MCPCONTROL_TOKEN_CODEC="creds-aes-cbc", CREDS_KEY=KEY_HEX, CREDS_IV=IV_HEX,
                   CODE=code)  # fmt: skip
    assert result.stdout.split() == ["started", "creds-aes-cbc"]
