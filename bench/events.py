"""Event streams: how soon an agent's report reaches a connected client, and what a thousand
open streams cost one server.

The streams are read as a browser's ``EventSource`` reads them: raw ``GET``s on sockets of
their own (no SDK), so the figures are the server's. The agent (``bench.agents.ticker``)
writes the wall-clock time into each progress message and each stdout line; a client's
latency is its own wall-clock time when the event's last byte arrived, minus that.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from bench.common import (
    Bench,
    Figure,
    Result,
    Server,
    Target,
    p50_p99,
    percentile,
    server_sockets,
    status_kb,
)

REPORTS = 100  # event_latency: progress reports (and stdout lines) of the timed task
REPORT_EVERY_SECONDS = 0.15  # past the server's 0.1 s flush interval: each report alone
BURST_REPORTS = 200  # event_latency: reports made back to back, for the coalesced case
OPEN_STREAMS = 1_000  # stream_memory
FANOUT_REPORTS = 20  # stream_memory: reports each of the open streams receives
STREAM_SETTLE_SECONDS = 2.0
LATENCY_TARGET = Target(10.0, "< 10 ms")
MEMORY_TARGET = Target(100.0, "< 100 MB")
CONNECTS_AT_ONCE = 200  # streams being opened at once (below the listen backlog)


@dataclass(slots=True)
class RawStream:
    """One stream on a socket of its own; collects (event name, data, arrival time)."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    events: list[tuple[str, dict[str, object], float]] = field(default_factory=list)

    @classmethod
    async def open(cls, server: Server, path: str) -> RawStream:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
            f"{server.api_key}\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"the stream was refused: {head[:200]!r}")
        return cls(reader, writer)

    async def read(self, until: str | None = None, count: int | None = None) -> None:
        """Collect events until one named ``until``, or ``count`` of them (chunked framing:
        a chunk-size line, then the chunk)."""
        buffer = b""
        while True:
            size_line = await self.reader.readline()
            size = int(size_line.strip() or b"0", 16)
            if size == 0:
                return
            buffer += await self.reader.readexactly(size)
            await self.reader.readexactly(2)
            arrived = time.time()
            *complete, buffer = buffer.split(b"\n\n")
            for block in complete:
                name, data = _parse(block)
                if name is None:
                    continue
                self.events.append((name, data, arrived))
                if name == until or (count is not None and len(self.events) >= count):
                    return

    async def opened(self) -> None:
        """Read the stream's first chunk (``retry:``): the server follows the stream now."""
        size = int((await self.reader.readline()).strip(), 16)
        await self.reader.readexactly(size + 2)

    def close(self) -> None:
        self.writer.close()


def _parse(block: bytes) -> tuple[str | None, dict[str, object]]:
    name, data = None, {}
    for line in block.decode().splitlines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data = json.loads(line[6:])
    return name, data


def _latencies(stream: RawStream, kind: str) -> list[float]:
    found = []
    for name, data, arrived in stream.events:
        if name == kind == "progress":
            found.append(arrived - float(str(data["message"])))
        elif name == kind == "log":
            found.append(arrived - float(str(data["text"])))
    return found


async def _session(server: Server, user: str) -> tuple[str, str]:
    async with server.client() as client:
        session = await client.sessions.for_user(user)
        return session.session_id, f"/v1/sessions/{session.session_id}"


async def _submit(server: Server, session_id: str, payload: dict[str, object]) -> str:
    async with server.client() as client:
        session = await client.sessions.get(session_id)
        task = await session.tasks.submit("ticker", payload)
        return task.task_id


def measure_event_latency(bench: Bench) -> Result:
    """From the agent's report to a connected client, on a task's stream and on its session's.

    One server, one session. Open a raw stream on the session (``GET …/events``) and submit a
    ``ticker`` task making REPORTS reports REPORT_EVERY_SECONDS apart, each also printed to
    stdout; open a raw stream on the task at once (it replays what it missed, which is
    counted out: only events that arrived after the stream was open are timed). Each client
    reads to the task's end. Latency: the client's ``time.time()`` when the event arrived
    minus the time the agent wrote into it. Then a second task makes BURST_REPORTS reports
    back to back: those wait for the server's next write (at most ten a second per task),
    which shows as the burst's figure.
    """
    result = Result("event_latency")
    with bench.server("event_latency") as server:

        async def run() -> None:
            session_id, base = await _session(server, "events")
            on_session = await RawStream.open(server, f"{base}/events")
            task_id = await _submit(
                server,
                session_id,
                {"steps": REPORTS, "every": REPORT_EVERY_SECONDS, "print": True},
            )
            opened = time.time()
            on_task = await RawStream.open(server, f"{base}/tasks/{task_id}/events")
            await asyncio.gather(on_task.read(until="end"), on_session.read(count=REPORTS + 3))
            received = len(_latencies(on_task, "progress"))
            live = [
                a - float(str(d["message"]))
                for n, d, a in on_task.events
                if n == "progress" and float(str(d["message"])) > opened
            ]
            logs = [
                a - float(str(d["text"]))
                for n, d, a in on_task.events
                if n == "log" and float(str(d["text"])) > opened
            ]
            in_session = _latencies(on_session, "progress")
            result.figures += p50_p99("task stream: report → client", live, LATENCY_TARGET)
            result.figures += p50_p99("session stream: report → client", in_session)
            if logs:
                result.figures += p50_p99("task stream: stdout line → client", logs)
            result.notes.append(
                f"{len(live)} progress reports timed live on the task stream (of "
                f"{received} received), {len(in_session)} on the session stream, "
                f"{len(logs)} stdout lines; reports {REPORT_EVERY_SECONDS * 1000:.0f} ms apart"
            )
            if not logs:
                result.notes.append("no log events: this server does not capture stdout yet")
            burst_id = await _submit(server, session_id, {"steps": BURST_REPORTS, "every": 0})
            burst = await RawStream.open(server, f"{base}/tasks/{burst_id}/events")
            await burst.read(until="end")
            timed = _latencies(burst, "progress")
            result.figures += p50_p99("burst: report → client", timed)
            result.notes.append(
                f"burst: {BURST_REPORTS} reports back to back, {len(timed)} kept as events "
                "(each write keeps at most the latest 20 of the reports it gathers)"
            )
            for stream in (on_task, on_session, burst):
                stream.close()

        asyncio.run(run())
    return result


def measure_stream_memory(bench: Bench) -> Result:
    """What OPEN_STREAMS open streams cost one server, and how fast one event reaches all.

    One server, one session. Read the server's VmRSS, then open OPEN_STREAMS raw streams on
    the session (CONNECTS_AT_ONCE at a time) and read it again STREAM_SETTLE_SECONDS after
    the last opened. Then a ``ticker`` task makes FANOUT_REPORTS reports, 0.15 s apart: each
    stream must receive all of them; latency is, per report and stream, its arrival minus the
    time the agent wrote into it. Last, the streams are closed and the server's sockets on
    its port counted STREAM_SETTLE_SECONDS later.
    """
    result = Result("stream_memory")
    with bench.server("stream_memory") as server:

        async def run() -> None:
            session_id, base = await _session(server, "watchers")
            baseline = status_kb(server.pid, "VmRSS")
            gate = asyncio.Semaphore(CONNECTS_AT_ONCE)

            async def open_one() -> RawStream:
                async with gate:
                    stream = await RawStream.open(server, f"{base}/events")
                    await stream.opened()
                    return stream

            started = time.perf_counter()
            streams = await asyncio.gather(*(open_one() for _ in range(OPEN_STREAMS)))
            opening = time.perf_counter() - started
            await asyncio.sleep(STREAM_SETTLE_SECONDS)
            held = status_kb(server.pid, "VmRSS")
            await _submit(
                server, session_id, {"steps": FANOUT_REPORTS, "every": REPORT_EVERY_SECONDS}
            )
            expected = FANOUT_REPORTS + 3  # queued, running, the reports, completed
            async with _all_closed(streams):
                await asyncio.wait_for(
                    asyncio.gather(*(s.read(count=expected) for s in streams)), 120
                )
            delivered = [lat for s in streams for lat in _latencies(s, "progress")]
            short = [s for s in streams if len(s.events) < expected]
            await asyncio.sleep(STREAM_SETTLE_SECONDS)
            left = server_sockets(server.port)
            result.figures.append(
                Figure(f"server RSS, {OPEN_STREAMS} streams", held / 1024, "MB", MEMORY_TARGET)
            )
            result.figures.append(Figure("per stream", (held - baseline) / OPEN_STREAMS, "kB"))
            result.figures += p50_p99(f"report → each of {OPEN_STREAMS} clients", delivered)
            result.figures.append(Figure("report → last client, max", max(delivered) * 1000, "ms"))
            result.notes.append(
                f"RSS {baseline / 1024:.1f} MB before the streams, {held / 1024:.1f} MB with "
                f"{OPEN_STREAMS} open (opened in {opening:.1f} s); {len(delivered)} deliveries "
                f"timed (p99.9 {percentile(delivered, 99.9) * 1000:.1f} ms); server sockets on "
                f"its port {STREAM_SETTLE_SECONDS:.0f} s after the clients closed: "
                f"{dict(left) or 'none'}"
            )
            if short:
                result.notes.append(f"UNEXPECTED: {len(short)} streams missed events")

        asyncio.run(run())
    return result


@contextlib.asynccontextmanager
async def _all_closed(streams: list[RawStream]) -> AsyncIterator[None]:
    try:
        yield
    finally:
        for stream in streams:
            stream.close()
