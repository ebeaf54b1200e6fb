"""PKCE (RFC 7636) with S256, the only method OAuth 2.1 and MCP allow."""

import base64
import hashlib
import secrets


def code_verifier() -> str:
    """A 43-character verifier (256 bits of entropy), the RFC's recommended size."""
    return secrets.token_urlsafe(32)


def code_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")
