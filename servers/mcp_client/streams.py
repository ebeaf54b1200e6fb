"""The stream pair our own MCP transports (stdio, websocket) hand to the SDK's session.

mcp 2.3.0 exports `mcp.client.Transport`, the context manager its `Client` accepts, but not
the type of the pair that context yields: `TransportStreams`, `ReadStream` and `WriteStream`
live in private modules (`mcp.client._transport`, `mcp.shared._stream_protocols`). So the
pair is spelled here with public anyio and mcp types. anyio's memory object streams satisfy
the SDK's stream protocols; mypy checks that where probe.py gives a transport to `Client`.
"""

from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.shared.message import SessionMessage

__all__ = ["Streams"]

type Streams = tuple[
    MemoryObjectReceiveStream[SessionMessage | Exception], MemoryObjectSendStream[SessionMessage]
]
