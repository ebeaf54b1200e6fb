"""The operator console (Django admin) of the servers app."""

from django.contrib import admin

from servers.admin.agents import AgentAdmin, AgentConnectionAdmin
from servers.admin.servers import McpServerAdmin
from servers.models import Agent, AgentConnection, McpServer

admin.site.register(McpServer, McpServerAdmin)
admin.site.register(Agent, AgentAdmin)
admin.site.register(AgentConnection, AgentConnectionAdmin)

__all__ = ["AgentAdmin", "AgentConnectionAdmin", "McpServerAdmin"]
