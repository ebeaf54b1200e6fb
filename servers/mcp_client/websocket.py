"""MCP over websocket for the SDK's ClientSession (the 2.x SDK ships no websocket client).

One JSON-RPC message per text frame, subprotocol "mcp". The transport only moves frames:
negotiation, requests and timeouts stay in the SDK's session, like its other transports.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import mcp_types as types
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.shared.message import SessionMessage
from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.uri import parse_uri

from mcpcontrol.lib.netguard import open_socket
from servers.mcp_client.streams import Streams

SUBPROTOCOL = "mcp"


async def _read_frames(
    ws: ClientConnection, sink: MemoryObjectSendStream[SessionMessage | Exception]
) -> None:
    async with sink:
        try:
            async for frame in ws:
                try:
                    message = types.jsonrpc_message_adapter.validate_json(frame, by_name=False)
                except ValidationError as exc:
                    await sink.send(exc)  # the session surfaces it; the socket stays usable
                    continue
                await sink.send(SessionMessage(message))
        except ConnectionClosed:
            pass  # the session sees the read stream end


async def _write_frames(
    ws: ClientConnection, source: MemoryObjectReceiveStream[SessionMessage]
) -> None:
    async with source:
        async for session_message in source:
            await ws.send(
                session_message.message.model_dump_json(by_alias=True, exclude_unset=True)
            )


@asynccontextmanager
async def websocket_client(
    url: str, *, headers: dict[str, str], open_timeout: float
) -> AsyncIterator[Streams]:
    """Connect to `url` and yield the (read, write) stream pair the SDK session expects.

    The socket is opened to an address the URL guard checked (open_socket), so the name
    cannot resolve elsewhere after the check; TLS still verifies and sends the URI's host
    name. With a given socket websockets follows no redirect, which also keeps a redirect
    from leading the handshake somewhere unchecked.

    1. Open the checked socket within open_timeout.
    2. Do the websocket handshake on it, asking for the `mcp` subprotocol.
    3. Pump frames both ways between the socket and the session's streams until closed.
    """
    uri = parse_uri(url)
    with anyio.fail_after(open_timeout):
        sock = await open_socket(uri.host, uri.port)
    read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](0)
    try:
        ws = await connect(
            url,
            sock=sock,
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            additional_headers=headers,
            open_timeout=open_timeout,
            close_timeout=1,
            proxy=None,
        )
    except BaseException:
        sock.close()  # idempotent if the failed connection closed it already
        raise
    async with ws:
        if ws.subprotocol != SUBPROTOCOL:
            raise ConnectionError(
                f"server did not accept the {SUBPROTOCOL!r} websocket subprotocol"
            )
        async with read_stream, write_stream, anyio.create_task_group() as tg:
            tg.start_soon(_read_frames, ws, read_writer)
            tg.start_soon(_write_frames, ws, write_reader)
            yield read_stream, write_stream
            tg.cancel_scope.cancel()
