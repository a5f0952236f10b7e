"""How fast /healthz answers while clients without a key try to stall the server.

Run from the repository root, with the project installed::

    python bench/hostile.py [--probes 300] [--idle 2000] [--flooders 16]

One ``theazo serve`` on SQLite; /healthz is asked ``--probes`` times, each on a new
connection (a client that just arrived), in three settings:

* quiet: nothing else happens;
* idle: ``--idle`` connections are open and send nothing, from two other addresses
  (127.0.0.2 and 127.0.0.3, so that the per-client cap lets them all in);
* flood: ``--flooders`` processes each open connection after connection (from 127.0.0.4)
  and send a request line followed by an endless header, 64 KiB at a time, until the server
  answers 431 and closes; and the idle connections are still open. (Processes, not threads:
  the probes' own timing must not wait for the flood's share of this process's GIL.)

Prints the latency of /healthz (p50, p99, max) in each setting, and how many flood
connections were answered 431.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import socket
import statistics
import sys
import tempfile
import time
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Protocol

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `bench.…` as a script too

from bench.common import Bench


def probe(port: int, count: int) -> list[float]:
    """Milliseconds for each of ``count`` /healthz, each on a fresh connection: from connect()
    to the whole answer (raw sockets, so that no client library's own set-up is counted)."""
    samples = []
    request = b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
    for _ in range(count):
        started = time.perf_counter()
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(request)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        samples.append((time.perf_counter() - started) * 1000)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    return samples


def summary(label: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return (
        f"{label:<34} p50 {statistics.median(ordered):7.2f} ms   p99 {p99:7.2f} ms   "
        f"max {ordered[-1]:7.2f} ms"
    )


def open_idle(port: int, count: int) -> list[socket.socket]:
    held = []
    sources = ("127.0.0.2", "127.0.0.3")
    for number in range(count):
        held.append(
            socket.create_connection(
                ("127.0.0.1", port), timeout=10, source_address=(sources[number % 2], 0)
            )
        )
    return held


class EventLike(Protocol):
    def is_set(self) -> bool: ...


def flood(port: int, stop: EventLike, refused: Synchronized[int]) -> None:
    chunk = b"a" * 65536
    while not stop.is_set():
        try:
            with socket.create_connection(
                ("127.0.0.1", port), timeout=10, source_address=("127.0.0.4", 0)
            ) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Flood: ")
                with contextlib.suppress(OSError):
                    while not stop.is_set():
                        sock.sendall(chunk)
                with contextlib.suppress(OSError):
                    if sock.recv(64).startswith(b"HTTP/1.1 431"):
                        with refused.get_lock():
                            refused.value += 1
        except OSError:
            pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes", type=int, default=300)
    parser.add_argument("--idle", type=int, default=2000)
    parser.add_argument("--flooders", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="theazo-hostile-") as folder:
        bench = Bench(database=None, tasks=None, concurrency=8, workdir=Path(folder))
        # The bench's servers lift the per-client cap; this one keeps the default, as a
        # deployment does, so the idle connections come from two addresses.
        with bench.server("hostile", options=["--max-connections-per-client", "1000"]) as server:
            print(summary("quiet", probe(server.port, args.probes)))
            held = open_idle(server.port, args.idle)
            # The kernel completes the handshakes before the server accepts them: the first
            # probe would wait behind 2,000 accepts (about 130 ms here), once.
            time.sleep(1)
            try:
                print(summary(f"{args.idle:,} idle connections", probe(server.port, args.probes)))
                context = multiprocessing.get_context("spawn")
                stop, refused = context.Event(), context.Value("q", 0)
                floods = [
                    context.Process(target=flood, args=(server.port, stop, refused), daemon=True)
                    for _ in range(args.flooders)
                ]
                for process in floods:
                    process.start()
                try:
                    deadline = time.monotonic() + 60
                    while refused.value < 20 * args.flooders:  # every flooder under way
                        if time.monotonic() > deadline:
                            raise RuntimeError("the flood did not start")
                        time.sleep(0.1)
                    before, started = refused.value, time.perf_counter()
                    samples = probe(server.port, args.probes)
                    elapsed = time.perf_counter() - started
                    during = refused.value - before
                finally:
                    stop.set()
                    for process in floods:
                        process.join()
                label = f"+ header flood ({args.flooders} clients)"
                print(summary(label, samples))
                print(
                    f"flood connections answered 431 while probing: {during:,} "
                    f"({during / elapsed:,.0f} a second, {during * 64 / elapsed / 1024:,.0f} MiB/s "
                    "of headers)"
                )
            finally:
                for sock in held:
                    sock.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
