"""Services of the tokens app: the only entry points other apps call."""

from tokens.services.oauth import oauth_ensure_fresh

__all__ = ["oauth_ensure_fresh"]
