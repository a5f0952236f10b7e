"""The wire between the server and its sandboxes.

Two kinds of channel, both Unix sockets the server creates (nothing listens on a path, so no
other process can connect and pose as a sandbox):

* The **control channel** (SOCK_SEQPACKET, one per zygote): one JSON object per packet.
  Server → zygote: ``spawn``, carrying the task channel's socket as SCM_RIGHTS.
  Zygote → server: ``ready`` (the agent catalogue), ``spawned``, ``spawn_failed``, ``exited``.
* The **task channel** (SOCK_STREAM, one per sandbox): frames of a 4-byte big-endian length and
  a JSON object.

This module is imported by the zygote, so it stays free of asyncio: the fewer modules a zygote
holds, the cheaper every fork (asyncio alone doubles it). The server's asyncio reader is in
``pool.py``. Server → sandbox: ``init`` (the input and the task's identity).
  Sandbox → server: ``progress``, ``charge``, and last ``result`` or ``error``.
"""

from __future__ import annotations

import array
import json
import os
import socket
import struct
from typing import Any

_LENGTH = struct.Struct(">I")
CONTROL_PACKET_BYTES = 4 * 1024 * 1024  # the largest control packet (the agent catalogue)
MAX_PASSED_FDS = 16  # the most descriptors one packet carries: a spare's egress listeners
# A spawn carries the task channel, then the write ends of the agent's stdout and stderr.
SPAWN_FDS = 3


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


def send_with_fds(sock: socket.socket, message: dict[str, Any], fds: list[int]) -> None:
    """One packet on a SOCK_SEQPACKET socket, carrying file descriptors (SCM_RIGHTS)."""
    sock.sendmsg([encode(message)], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fd_bytes(fds))])


def recv_packet(sock: socket.socket) -> tuple[bytes, list[int]]:
    """The next packet of a SOCK_SEQPACKET socket and the descriptors it carries; empty data
    means the end of the stream."""
    fds = array.array("i")
    space = socket.CMSG_SPACE(fds.itemsize * MAX_PASSED_FDS)
    data, ancillary, _, _ = sock.recvmsg(CONTROL_PACKET_BYTES, space)
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
    return data, list(fds)


def recv_with_fds(sock: socket.socket, count: int) -> tuple[dict[str, Any], list[int]] | None:
    """The next packet and the ``count`` descriptors it carries; None at the end of the
    stream or for a packet with another number of descriptors (which are closed)."""
    data, fds = recv_packet(sock)
    if not data or len(fds) != count:
        for fd in fds:
            os.close(fd)
        return None
    message: dict[str, Any] = json.loads(data)
    return message, fds


def fd_bytes(fds: list[int]) -> bytes:
    return array.array("i", fds).tobytes()


def decode_frame_header(header: bytes) -> int:
    (size,) = _LENGTH.unpack(header)
    return int(size)


FRAME_HEADER_BYTES = _LENGTH.size
