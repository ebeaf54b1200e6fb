"""MCP over websocket for the SDK's ClientSession (the 2.x SDK ships no websocket client).

One JSON-RPC message per text frame, subprotocol "mcp". The transport only moves frames:
negotiation, requests and timeouts stay in the SDK's session, like its other transports.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import mcp_types as types
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.client._transport import TransportStreams
from mcp.shared.message import SessionMessage
from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

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
) -> AsyncIterator[TransportStreams]:
    """Connect to `url` and yield the (read, write) stream pair the SDK session expects."""
    read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](0)
    async with connect(
        url,
        subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
        additional_headers=headers,
        open_timeout=open_timeout,
        close_timeout=1,
        proxy=None,
    ) as ws:
        if ws.subprotocol != SUBPROTOCOL:
            raise ConnectionError(
                f"server did not accept the {SUBPROTOCOL!r} websocket subprotocol"
            )
        async with read_stream, write_stream, anyio.create_task_group() as tg:
            tg.start_soon(_read_frames, ws, read_writer)
            tg.start_soon(_write_frames, ws, write_reader)
            yield read_stream, write_stream
            tg.cancel_scope.cancel()
