"""MCP over a child process's stdin/stdout, whose shutdown costs nothing after a timeout.

The SDK's stdio_client stops the child the spec's polite way (close stdin, wait 2 s, SIGTERM,
wait 2 s, SIGKILL) inside a cancellation shield, so a hung server costs its timeout plus
about 3 s. A health check has nothing to hand over to the child: after a finished session it
gets EXIT_GRACE to leave on stdin EOF; after a timeout (we are cancelled) its whole process
group is SIGKILLed at once. Either way the child is reaped before we return.
"""

import os
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import IO

import anyio
import mcp_types as types
from anyio.abc import AsyncResource, Process
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.client.stdio import get_default_environment
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

from servers.mcp_client.streams import Streams

# After a finished session: time for the server to exit on stdin EOF before the SIGKILL.
EXIT_GRACE = 1.0
# After the SIGKILL: time for the event loop to see the death (only a D-state child takes it).
REAP_TIMEOUT = 2.0
_POLL = 0.01
_PIPE_GONE = (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError, OSError)


def _parse(line: bytes) -> SessionMessage | Exception:
    try:
        return SessionMessage(types.jsonrpc_message_adapter.validate_json(line, by_name=False))
    except ValidationError as exc:
        return exc  # the session surfaces it; the pipe stays usable


async def _read_stdout(
    process: Process, sink: MemoryObjectSendStream[SessionMessage | Exception]
) -> None:
    assert process.stdout is not None
    buffer = b""
    async with sink:
        with suppress(*_PIPE_GONE):  # EOF or a closed session: the session sees the end
            async for chunk in process.stdout:
                *lines, buffer = (buffer + chunk).split(b"\n")
                for line in lines:
                    if line.strip():
                        await sink.send(_parse(line))


async def _write_stdin(process: Process, source: MemoryObjectReceiveStream[SessionMessage]) -> None:
    assert process.stdin is not None
    async with source:
        with suppress(*_PIPE_GONE):  # a dead child: its stdout EOF ends the session
            async for message in source:
                data = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                await process.stdin.send(data.encode() + b"\n")


async def _exited(process: Process, timeout: float) -> bool:
    # Polled, not process.wait(): that also waits for pipe EOF, which a grandchild holding
    # the pipes would delay.
    with anyio.move_on_after(timeout):
        while process.returncode is None:
            await anyio.sleep(_POLL)
    return process.returncode is not None


async def _close(*resources: AsyncResource | None) -> None:
    for resource in resources:
        if resource is not None:
            with suppress(*_PIPE_GONE):
                await resource.aclose()


async def _kill_and_reap(process: Process) -> None:
    """SIGKILL the child's process group (grandchildren such as npx's node included) and wait
    until the event loop has reaped the child, so neither a zombie nor an orphan is left."""
    # start_new_session made the child a group leader: its pid is the pgid, valid even after
    # the leader itself was reaped while grandchildren live on.
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    await _exited(process, REAP_TIMEOUT)
    await _close(process.stdin, process.stdout)


@asynccontextmanager
async def stdio_client(
    *, command: str, args: list[str], env: dict[str, str], cwd: str, errlog: IO[str] | int,
    started: Callable[[Process], None] | None = None,
) -> AsyncIterator[Streams]:  # fmt: skip
    """Start `command` in its own session and yield the (read, write) pair the SDK expects.
    `started` is shown the process (the gateway's pool checks that a kept one still lives)."""
    process = await anyio.open_process(
        [command, *args], env=get_default_environment() | env, cwd=cwd or None, stderr=errlog,
        start_new_session=True,
    )  # fmt: skip
    if started is not None:
        started(process)
    read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](0)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_read_stdout, process, read_writer)
            tg.start_soon(_write_stdin, process, write_reader)
            try:
                yield read_stream, write_stream
            finally:
                await _close(read_stream, write_stream, process.stdin)  # stdin EOF: "please exit"
                await _exited(process, EXIT_GRACE)  # not shielded: a timed-out check skips it
                tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):  # also on cancellation, or the child would leak
            await _kill_and_reap(process)
