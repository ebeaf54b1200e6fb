"""OAuth discovery action and the "Connect" button for the server admin (filled by the OAuth work)."""


class OAuthAdminMixin:
    pass
