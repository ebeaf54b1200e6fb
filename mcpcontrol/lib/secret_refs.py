"""Secret references: a credential field may say where its secret lives instead of holding it.

The whole value of a credential field (a grant's API key or bearer token, the OAuth client
secret, a variable's value, an env or header value of a server) may be:

    env:NAME                      an environment variable of the process that uses it
    file:/absolute/path           a file's content, one trailing newline dropped
    aws-sm:<secret id>[#<key>]    AWS Secrets Manager (boto3); #key picks one field of JSON
    vault:<mount>/<path>#<key>    HashiCorp Vault, KV version 2 (hvac)
    literal:<text>                <text> itself: the escape for a value that only looks like one

Anything else is a plain value. A scheme followed by "//" is a URL (file:///data/x.db) and
stays plain; a lower-case hyphenated word before a colon (gcp-sm:..., aws-ssm:...) is taken for
a store we do not support and refused, so a typo never ships the reference text as the secret.

The stored value stays the reference (encrypted like any credential); `deref` turns it into the
secret only where it is used, in the process using it, and nothing stores what it returns.
Which references anyone may use is the operator's allow-list MCPCONTROL_SECRET_REFS (see
`_check_allowed`). Errors are RefError, whose message names the scheme and the problem but
never the secret nor where it lives, so it can be shown to whoever meets it.

AWS and Vault are reached through boto3 and hvac, not lib/http: their addresses come from
settings, never from a user, and a Vault usually lives on a private network the upstream
guard would refuse.
"""

import fnmatch
import json
import os
import re
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.conf import settings

SCHEMES = ("env", "file", "aws-sm", "vault")
LITERAL = "literal:"
# A scheme: lower-case words joined by hyphens, then a colon not followed by "//" (a URL).
_SCHEME_RE = re.compile(r"([a-z][a-z0-9]*(?:-[a-z0-9]+)*):(?!//)")
_ENV_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEY = r"[^#\x00-\x1f\x7f]+"
_AWS_RE = re.compile(rf"(?P<target>[A-Za-z0-9/_+=.@:!-]+)(?:#(?P<key>{_KEY}))?")
# Path segments that cannot climb out of the mount: no "", "." or "..", no URL syntax.
_SEGMENT = r"[A-Za-z0-9_][A-Za-z0-9_.-]*"
_VAULT_RE = re.compile(rf"(?P<target>{_SEGMENT}(?:/{_SEGMENT})+)#(?P<key>{_KEY})")
MAX_FILE_BYTES = 64 * 1024
# A store that failed to answer is not asked again for this long: one unreachable Vault
# costs one timeout per process, not one per server of an agent's config or a health sweep.
STORE_DOWN_SECONDS = 15
_CACHE_ENTRIES = 1024


class RefError(Exception):
    """A reference that is malformed, not allowed, or cannot be resolved now. The message is
    safe to show: it names the scheme and the problem, never the secret or its location."""


class _StoreDown(RefError):
    """The store did not answer (connection refused, timeout, 5xx): worth asking again later."""


@dataclass(frozen=True)
class Ref:
    """One parsed reference: `target` is the variable, path, secret id or mount/path."""

    scheme: str
    target: str
    key: str
    text: str  # as written, what the allow-list patterns match


def _problem(scheme: str, problem: str) -> RefError:
    return RefError(f"{scheme} reference: {problem}")


def parse(value: str) -> Ref | None:
    """The reference `value` holds, or None for a plain value (and for literal:...).

    Raises RefError for an unknown scheme or a reference whose syntax is wrong.
    """
    match = _SCHEME_RE.match(value)
    if match is None:
        return None
    scheme, rest = match.group(1), value[match.end() :]
    if scheme not in SCHEMES:
        # Hyphenated words name stores (gcp-sm, azure-kv); "my-host:8080" is an address.
        if "-" in scheme and not rest[:1].isdigit():
            raise RefError(
                f"unknown secret reference scheme {scheme!r}: use env:, file:, aws-sm: or "
                "vault:, or write literal: in front of a value meant as it is"
            )
        return None
    return _SYNTAX[scheme](scheme, rest, value)


def _env_syntax(scheme: str, rest: str, text: str) -> Ref:
    if not _ENV_RE.fullmatch(rest):
        raise _problem(scheme, "write env:NAME with a variable name of letters, digits and _")
    return Ref(scheme, rest, "", text)


def _file_syntax(scheme: str, rest: str, text: str) -> Ref:
    parts = rest.split("/")
    if not rest.startswith("/") or any(p in ("", ".", "..") for p in parts[1:]) or "\0" in rest:
        raise _problem(scheme, "write file:/absolute/path, without . or .. segments")
    return Ref(scheme, rest, "", text)


def _aws_syntax(scheme: str, rest: str, text: str) -> Ref:
    match = _AWS_RE.fullmatch(rest)
    if match is None:
        raise _problem(scheme, "write aws-sm:<secret name or ARN>[#<json key>]")
    return Ref(scheme, match["target"], match["key"] or "", text)


def _vault_syntax(scheme: str, rest: str, text: str) -> Ref:
    match = _VAULT_RE.fullmatch(rest)
    if match is None:
        raise _problem(scheme, "write vault:<mount>/<path>#<key> (KV version 2)")
    return Ref(scheme, match["target"], match["key"], text)


_SYNTAX: dict[str, Callable[[str, str, str], Ref]] = {
    "env": _env_syntax, "file": _file_syntax, "aws-sm": _aws_syntax, "vault": _vault_syntax,
}  # fmt: skip


def is_reference(value: str) -> bool:
    """Whether `value` is (or tries to be) a reference, i.e. is not taken literally."""
    try:
        return parse(value) is not None
    except RefError:
        return True


def quote(value: str) -> str:
    """`value` made literal. For secrets an outside party hands us (an authorization server's
    client secret): what it sends must never make us read a file or a store."""
    return LITERAL + value if value.startswith(LITERAL) or is_reference(value) else value


def deref(value: str) -> str:
    """The secret `value` stands for: itself, the text after literal:, or what the reference
    names, read now. Raises RefError saying why it cannot be had."""
    if value.startswith(LITERAL):
        return value.removeprefix(LITERAL)
    ref = parse(value)
    if ref is None:
        return value
    _check_allowed(ref)
    secret = _read(ref)
    if re.search(r"[\r\n\x00]", secret):
        raise _problem(ref.scheme, "the secret must be one line (it holds CR, LF or NUL)")
    return secret


def check(value: str) -> str:
    """Why `value` cannot be saved, or "". A reference must be well formed, allowed, and
    resolve now: a typo or an unreachable store is better met at save than on first use."""
    try:
        deref(value)
    except RefError as exc:
        return str(exc)
    return ""


def _check_allowed(ref: Ref) -> None:
    """Only what MCPCONTROL_SECRET_REFS lists. Whoever may store a credential may write a
    reference and read its secret back through their agent's config, so without this list
    any user could read the control plane's own environment (env:MCPCONTROL_ENCRYPTION_KEYS)
    or files. Empty, the default, turns references off."""
    if not any(fnmatch.fnmatchcase(ref.text, p) for p in settings.MCPCONTROL_SECRET_REFS):
        raise _problem(ref.scheme, "not allowed here (MCPCONTROL_SECRET_REFS does not list it)")


def _read(ref: Ref) -> str:
    if ref.scheme == "env":
        secret = os.environ.get(ref.target)
        if secret is None:
            raise _problem("env", "the variable is not set")
        return secret
    if ref.scheme == "file":
        return _read_file(ref.target)
    return _remote(ref)


def _read_file(path: str) -> str:
    try:
        # A FIFO or a device could block or never end: regular files only, and bounded.
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise _problem("file", "not a regular file")
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise _problem("file", f"cannot read the file ({exc.strerror})") from None
    if len(data) > MAX_FILE_BYTES:
        raise _problem("file", f"the file is larger than {MAX_FILE_BYTES} bytes")
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise _problem("file", "the file is not UTF-8 text") from None
    return text.removesuffix("\n").removesuffix("\r")


# --- Remote stores: a short cache of answers, a memory of stores that did not answer ------

_lock = threading.Lock()
_answers: dict[tuple[str, str], tuple[float, str]] = {}  # (store, reference) -> (until, secret)
_down: dict[str, tuple[float, str]] = {}  # store -> (until, reason)


def _store_of(ref: Ref) -> str:
    if ref.scheme == "vault":
        return f"vault {settings.MCPCONTROL_VAULT_ADDR}"
    return f"aws {settings.MCPCONTROL_AWS_REGION} {settings.MCPCONTROL_AWS_ENDPOINT_URL}"


def _remote(ref: Ref) -> str:
    """Steps: 1. a cached answer younger than MCPCONTROL_SECRET_REFS_CACHE_SECONDS; 2. a store
    that failed within STORE_DOWN_SECONDS fails again at once; 3. ask the store."""
    store, now = _store_of(ref), time.monotonic()
    with _lock:
        answer = _answers.get((store, ref.text))
        if answer is not None and answer[0] > now:
            return answer[1]
        down = _down.get(store)
        if down is not None and down[0] > now:
            raise RefError(down[1])
    try:
        secret = _vault_read(ref) if ref.scheme == "vault" else _aws_read(ref)
    except _StoreDown as exc:
        with _lock:
            _down[store] = (now + STORE_DOWN_SECONDS, str(exc))
        raise
    ttl = settings.MCPCONTROL_SECRET_REFS_CACHE_SECONDS
    with _lock:
        _down.pop(store, None)
        if ttl:
            if len(_answers) >= _CACHE_ENTRIES:
                _answers.clear()
            _answers[(store, ref.text)] = (now + ttl, secret)
    return secret


def forget_cached() -> None:
    """Drop every cached answer and down store (after changing the stores' settings)."""
    with _lock:
        _answers.clear()
        _down.clear()


def _pick(scheme: str, document: Any, key: str) -> str:
    """One string field of a secret's JSON document."""
    value = document.get(key) if isinstance(document, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise _problem(scheme, "the secret has no such key with a text value")
    return value


def _vault_read(ref: Ref) -> str:
    """GET /v1/<mount>/data/<path> with the configured token; the key of its data."""
    import hvac  # only deployments that use vault: references need hvac
    from hvac import exceptions as vault

    if not settings.MCPCONTROL_VAULT_ADDR:
        raise _problem("vault", "MCPCONTROL_VAULT_ADDR is not set")
    mount, _, path = ref.target.partition("/")
    client = hvac.Client(
        url=settings.MCPCONTROL_VAULT_ADDR, token=settings.MCPCONTROL_VAULT_TOKEN,
        timeout=settings.MCPCONTROL_SECRET_REFS_TIMEOUT,
        allow_redirects=False,  # the token header would follow a redirect anywhere
    )  # fmt: skip
    try:
        answer = client.secrets.kv.v2.read_secret_version(
            path=path, mount_point=mount, raise_on_deleted_version=True
        )
    except vault.InvalidPath:
        raise _problem("vault", "no such secret") from None
    except vault.Forbidden:
        raise _problem("vault", "permission denied (check MCPCONTROL_VAULT_TOKEN)") from None
    except (vault.VaultDown, vault.InternalServerError, vault.BadGateway, OSError) as exc:
        # OSError covers requests' connection errors and timeouts.
        raise _StoreDown(f"vault reference: Vault is unreachable ({type(exc).__name__})") from None
    except vault.VaultError as exc:
        raise _problem("vault", f"Vault refused ({type(exc).__name__})") from None
    finally:
        client.adapter.close()  # its connection pool; answers are cached, not connections
    data = answer.get("data") if isinstance(answer, dict) else None
    return _pick("vault", data.get("data") if isinstance(data, dict) else None, ref.key)


@lru_cache(maxsize=4)
def _aws_client(region: str, endpoint_url: str, timeout: int) -> Any:
    """One Secrets Manager client per configuration (boto3 clients are thread-safe; making one
    takes tens of milliseconds)."""
    import boto3  # only deployments that use aws-sm: references need boto3
    from botocore.config import Config

    config = Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1})
    return boto3.session.Session().client(
        "secretsmanager", region_name=region or None, endpoint_url=endpoint_url or None,
        config=config,
    )  # fmt: skip


# Refusals that asking again will not change; any other error code is the service's trouble.
_AWS_REFUSALS = {
    "ResourceNotFoundException": "no such secret",
    "AccessDeniedException": "permission denied",
    "InvalidRequestException": "the secret cannot be read now (deleted or disabled)",
    "DecryptionFailure": "the secret cannot be decrypted (KMS)",
}


def _aws_read(ref: Ref) -> str:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

    try:
        client = _aws_client(
            settings.MCPCONTROL_AWS_REGION, settings.MCPCONTROL_AWS_ENDPOINT_URL,
            settings.MCPCONTROL_SECRET_REFS_TIMEOUT,
        )  # fmt: skip
        answer = client.get_secret_value(SecretId=ref.target)
    except (NoCredentialsError, NoRegionError) as exc:
        raise _problem("aws-sm", f"AWS is not configured ({type(exc).__name__})") from None
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", "unknown"))
        if code in _AWS_REFUSALS:
            raise _problem("aws-sm", f"{_AWS_REFUSALS[code]} ({code})") from None
        raise _StoreDown(f"aws-sm reference: Secrets Manager failed ({code})") from None
    except BotoCoreError as exc:
        raise _StoreDown(f"aws-sm reference: AWS is unreachable ({type(exc).__name__})") from None
    text = answer.get("SecretString")
    if text is None:
        try:
            text = bytes(answer.get("SecretBinary") or b"").decode()
        except UnicodeDecodeError:
            raise _problem("aws-sm", "the secret is binary, not text") from None
    if not ref.key:
        return str(text)
    try:
        document = json.loads(text)
    except ValueError:
        raise _problem("aws-sm", "the secret is not a JSON object, so #key cannot apply") from None
    return _pick("aws-sm", document, ref.key)
