"""The wire between the server and its sandboxes.

Two kinds of channel, both Unix sockets the server creates (nothing listens on a path, so no
other process can connect and pose as a sandbox):

* The **control channel** (SOCK_SEQPACKET, one per zygote): one JSON object per packet.
  Server → zygote: ``spawn``, carrying the task channel's socket as SCM_RIGHTS.
  Zygote → server: ``ready`` (the agent catalogue), ``spawned``, ``spawn_failed``, ``exited``.
* The **task channel** (SOCK_STREAM, one per sandbox): frames of a 4-byte big-endian length and
  a JSON object. Server → sandbox: ``init`` (the input and the task's identity).
  Sandbox → server: ``progress``, ``charge``, and last ``result`` or ``error``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from typing import Any

_LENGTH = struct.Struct(">I")
CONTROL_PACKET_BYTES = 4 * 1024 * 1024  # the largest control packet (the agent catalogue)


class FrameTooLarge(Exception):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"a message of {size} bytes is over the limit of {limit} bytes")
        self.size = size
        self.limit = limit


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def frame(message: dict[str, Any]) -> bytes:
    body = encode(message)
    return _LENGTH.pack(len(body)) + body


# --- blocking side (the sandbox) ------------------------------------------------------------
def send_frame(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(frame(message))


def send_encoded(sock: socket.socket, body: bytes) -> None:
    sock.sendall(_LENGTH.pack(len(body)) + body)


def recv_frame(sock: socket.socket) -> dict[str, Any] | None:
    header = _recv_exactly(sock, _LENGTH.size)
    if header is None:
        return None
    (size,) = _LENGTH.unpack(header)
    body = _recv_exactly(sock, size)
    if body is None:
        return None
    message: dict[str, Any] = json.loads(body)
    return message


def _recv_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks, remaining = [], size
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


# --- asyncio side (the server) --------------------------------------------------------------
async def read_frame(reader: asyncio.StreamReader, limit: int) -> dict[str, Any] | None:
    """The next message, or None at end of stream. A frame over ``limit`` raises."""
    try:
        header = await reader.readexactly(_LENGTH.size)
    except asyncio.IncompleteReadError:
        return None
    (size,) = _LENGTH.unpack(header)
    if size > limit:
        raise FrameTooLarge(size, limit)
    try:
        body = await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        return None
    message = json.loads(body)
    if not isinstance(message, dict):
        raise ValueError("a sandbox message must be a JSON object")
    return message
