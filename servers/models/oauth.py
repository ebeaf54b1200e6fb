"""The OAuth client settings of a server, as stored in McpServer.oauth."""

from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class OAuthSettings:
    """The OAuth client settings of a server (seed 004's `oauth` object, no secret in it).

    Stored as one JSON document on the server; the keys are seed 004's, plus ours: issuer,
    registration_endpoint, grant_type, token_endpoint_auth_method (what registration chose)
    and token_variable (the variable a stdio server receives the access token in).
    """

    authorization_url: str = ""
    token_url: str = ""
    client_id: str = ""
    scope: str = ""
    redirect_uri: str = ""
    token_exchange_method: str = "POST"
    grant_types_supported: tuple[str, ...] = ()
    token_endpoint_auth_methods_supported: tuple[str, ...] = ()
    response_types_supported: tuple[str, ...] = ()
    code_challenge_methods_supported: tuple[str, ...] = ()
    skip_code_challenge_check: bool = False
    revocation_endpoint: str = ""
    revocation_endpoint_auth_methods_supported: tuple[str, ...] = ()
    issuer: str = ""
    registration_endpoint: str = ""
    grant_type: str = "authorization_code"
    token_endpoint_auth_method: str = ""
    token_variable: str = ""

    URL_KEYS = ("authorization_url", "token_url", "revocation_endpoint", "registration_endpoint")

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "OAuthSettings":
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in (data or {}).items()
        }
        return cls(**{k: v for k, v in values.items() if k in known})

    @property
    def machine(self) -> bool:
        """A client credentials server: no human, tokens are simply asked for again."""
        return self.grant_type == "client_credentials"
