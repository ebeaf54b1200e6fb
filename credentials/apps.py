from django.apps import AppConfig


class CredentialsConfig(AppConfig):
    name = "credentials"
    verbose_name = "Upstream credentials"

    def ready(self) -> None:
        # The seam: servers reaches credentials only through this port (servers/credential_port).
        from credentials.port import Port
        from servers.credential_port import install

        install(Port())
