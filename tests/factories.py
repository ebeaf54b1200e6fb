"""factory_boy factories for the whole suite. Secrets are plain strings: the field seals them."""

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from credentials.models import Grant
from servers.models import Agent, AgentConnection, McpServer
from tokens.models import Token


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.django.Password("pw-for-tests-only")


class AdminFactory(UserFactory):
    """A superuser: every permission (staff status alone grants nothing)."""

    is_staff = True
    is_superuser = True
    username = factory.Sequence(lambda n: f"admin{n}")


class StaffFactory(UserFactory):
    """Staff status and no permission: may log in to the console, and may do nothing there."""

    is_staff = True
    username = factory.Sequence(lambda n: f"staff{n}")


class GroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Group

    name = factory.Sequence(lambda n: f"team{n}")


class McpServerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = McpServer

    name = factory.Sequence(lambda n: f"Server {n}")
    path = factory.Sequence(lambda n: f"/server-{n}")
    url = factory.Sequence(lambda n: f"https://mcp{n}.example.com/mcp")
    transport_type = McpServer.Transport.STREAMABLE_HTTP
    scope = McpServer.Scope.SHARED_APP
    status = McpServer.Status.ACTIVE
    tools = factory.LazyFunction(lambda: [{"name": "search"}, {"name": "fetch"}])
    num_tools = factory.LazyAttribute(lambda o: len(o.tools))


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agent

    name = factory.Sequence(lambda n: f"agent{n}")
    owner = factory.SubFactory(UserFactory)
    # Most config tests exercise the direct entries (seed 003's to_sdk_config); the gateway
    # default of agents created through the API, admin and /me/ has tests of its own.
    config_mode = Agent.ConfigMode.DIRECT


class AgentConnectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AgentConnection

    agent = factory.SubFactory(AgentFactory)
    server = factory.SubFactory(McpServerFactory)


class GrantFactory(factory.django.DjangoModelFactory):
    """A stored credential: the server's shared one unless `agent` is given."""

    class Meta:
        model = Grant

    server = factory.SubFactory(McpServerFactory)
    agent = None
    kind = factory.LazyAttribute(lambda o: o.server.auth_type)
    secret = "stored-credential"


class TokenFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Token

    user = factory.SubFactory(UserFactory)
    type = Token.Type.API_KEY
    identifier = factory.Sequence(lambda n: f"svc{n}")
    token = "stored-token-value"
