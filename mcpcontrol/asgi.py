"""The ASGI application: /mcp/ is the gateway (gateway.api.mcp), everything else Django.

Served by gunicorn with uvicorn workers (gunicorn.conf.py) or uvicorn alone; the WSGI
application (mcpcontrol.wsgi) keeps serving everything but /mcp/.
"""

import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcpcontrol.settings")
django_application = get_asgi_application()

from gateway.api.mcp import Gateway  # noqa: E402  (needs the app registry django set up)
from gateway.api.server_route import ServerRoute  # noqa: E402

gateway = Gateway()
server_route = ServerRoute(gateway=gateway)  # /mcp/servers{path}: one upstream, not renamed


async def application(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await gateway.lifespan(scope, receive, send)
    elif scope["type"] == "http" and scope["path"].startswith("/mcp/servers/"):
        await server_route(scope, receive, send)
    elif scope["type"] == "http" and scope["path"].startswith("/mcp/"):
        await gateway(scope, receive, send)
    else:
        await django_application(scope, receive, send)
