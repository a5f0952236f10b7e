"""The escape suite: a hostile agent tries what an attacker would, and every try fails.

The ``attacker`` agent (tests/agents.py) runs the attack each test writes, inside a real
sandbox of a real server in its default configuration, on each backend, with the server run
as root and as an unprivileged user. The attacks are the ones found against an unwalled
sandbox (issue 10): reading the database and the server's command line, another tenant's
files and memory, killing other processes, planting code on the import path, reaching the
database and Redis over the network, and outgrowing the limits.
"""

from __future__ import annotations

import os
import tempfile
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import fresh_database
from tests.support import unprivileged
from tests.support.sandboxes import host_pid, host_pids, process_tag, zygotes_of
from tests.support.server import ServerProcess, new_api_key
from tests.support.waiting import eventually
from theazo import Theazo
from theazo.sdk import Session

MEMORY_LIMIT_MB = 256
DISK_LIMIT_MB = 64
MAX_PROCESSES = 64


@pytest.fixture(scope="module", params=["root", "unprivileged"])
def server(request: pytest.FixtureRequest, backend: str) -> Iterator[ServerProcess]:
    """A server in the default sandbox configuration (but smaller limits, to test them),
    run as root or as nobody."""
    as_root = request.param == "root"
    if as_root and os.geteuid() != 0:
        pytest.skip("the tests do not run as root here")
    drop = not as_root and os.geteuid() == 0
    if drop and (reason := unprivileged.unavailable()):
        pytest.skip(reason)
    # Outside pytest's 0700 base directory, so that nobody can reach it too.
    workdir = Path(tempfile.mkdtemp(prefix="theazo-escape-"))
    args = [
        "--memory-limit", f"{MEMORY_LIMIT_MB}M",
        "--sandbox-disk-limit", f"{DISK_LIMIT_MB}M",
        "--sandbox-max-processes", str(MAX_PROCESSES),
        "--concurrency", "4",
    ]  # fmt: skip
    keys = [new_api_key(), new_api_key()]  # the victim's project, the attacker's project
    try:
        with (
            fresh_database(backend, workdir) as url,
            ServerProcess.start(
                workdir, api_keys=keys, args=args, database=url, unprivileged=drop
            ) as process,
        ):
            yield process
    finally:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def victim(server: ServerProcess) -> Iterator[Session]:
    with Theazo(api_key=server.api_keys[0], base_url=server.base_url) as client:
        yield client.sessions.for_user(f"victim-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def attacker(server: ServerProcess) -> Iterator[Session]:
    with Theazo(api_key=server.api_keys[1], base_url=server.base_url) as client:
        yield client.sessions.for_user(f"attacker-{uuid.uuid4().hex[:8]}")


def attack(session: Session, code: str, **given: Any) -> Any:
    """Run ``code`` as the attacker agent; what it sets as ``result``."""
    task = session.run(
        agent="attacker", input={"code": textwrap.dedent(code), **given}, wait_timeout="60s"
    )
    assert task.status == "completed", task.error
    return task.output


def running_victim(victim: Session) -> tuple[str, int]:
    """A victim task asleep in its sandbox, and its host pid."""
    task = victim.tasks.submit(agent="sleeper", input={"seconds": 20})
    eventually(lambda: victim.tasks.get(task.task_id).message, what="the victim running")
    return task.task_id, eventually(lambda: host_pid(task.task_id), what="its process")


def zygote_of(server: ServerProcess) -> int:
    (zygote, *_) = zygotes_of(server.pid)
    return zygote


def tier(server: ServerProcess) -> str:
    found: str = httpx.get(f"{server.base_url}/healthz").json()["sandbox"]["tier"]
    return found


def test_the_default_tier_here_walls_the_sandbox_in(server: ServerProcess) -> None:
    assert tier(server) in ("landlock", "cgroup")


def test_it_sees_no_process_but_its_own(
    server: ServerProcess, victim: Session, attacker: Session
) -> None:
    victim_task, victim_pid = running_victim(victim)
    zygote = zygote_of(server)
    seen = attack(
        attacker,
        """
        import os, signal
        def tried(call):
            try:
                call()
                return "done"
            except OSError as exc:
                return type(exc).__name__
        result = {
            "pids": sorted(p for p in os.listdir("/proc") if p.isdigit()),
            "parent": os.getppid(),
            "signal": {p: tried(lambda p=p: os.kill(p, signal.SIGKILL)) for p in input["pids"]},
            "memory": {p: tried(lambda p=p: open(f"/proc/{p}/mem", "rb")) for p in input["pids"]},
            "everyone": tried(lambda: os.kill(-1, signal.SIGKILL)),
        }
        """,
        pids=[victim_pid, zygote, server.pid],
    )
    assert seen["pids"] == ["1"]
    assert seen["parent"] == 0
    assert set(seen["signal"].values()) == {"ProcessLookupError"}
    assert set(seen["memory"].values()) == {"FileNotFoundError"}
    # The victim, the zygote and the server live on.
    assert victim.tasks.wait(victim_task, timeout="30s").status == "completed"
    assert zygote_of(server) == zygote
    assert httpx.get(f"{server.base_url}/healthz").status_code == 200


def test_it_reads_nothing_of_the_server(server: ServerProcess, attacker: Session) -> None:
    database = server.database.removeprefix("sqlite:///")
    seen = attack(
        attacker,
        """
        import os
        def readable(path):
            try:
                with open(path, "rb") as file:
                    return file.read(64) is not None
            except OSError:
                return False
        texts = b""
        for pid in os.listdir("/proc"):
            for name in ("cmdline", "environ"):
                try:
                    texts += open(f"/proc/{pid}/{name}", "rb").read()
                except OSError:
                    pass
        result = {
            "paths": {p: os.path.exists(p) or readable(p) for p in input["paths"]},
            "keys_in_proc": any(k.encode() in texts for k in input["keys"]),
            "database_named": input["database"].encode() in texts,
            "env": sorted(os.environ),
        }
        """,
        paths=[database, str(server.workdir), str(server.log_path), "/etc/shadow"],
        keys=server.api_keys,
        database=server.database,
    )
    assert not any(seen["paths"].values()), seen["paths"]
    assert not seen["keys_in_proc"]
    assert not seen["database_named"]
    assert not [name for name in seen["env"] if name.startswith("THEAZO")]


def test_it_writes_nowhere_but_its_scratch(attacker: Session) -> None:
    seen = attack(
        attacker,
        """
        import os, sys
        def writable(directory):
            try:
                path = os.path.join(directory, "sitecustomize.py")
                with open(path, "w") as file:
                    file.write("import os; os.system('echo owned')")
                return True
            except OSError:
                return False
        places = sorted({p for p in sys.path if p} | {"/", "/usr", "/etc", "/dev", "/proc",
                        input["repo"], os.path.join(input["repo"], "src")})
        result = {
            "import_path": {p: writable(p) for p in places},
            "scratch": {p: writable(p) for p in ("/workspace", "/tmp", "/dev/shm")},
        }
        """,
        repo=str(Path(__file__).resolve().parents[2]),
    )
    assert not any(seen["import_path"].values()), seen["import_path"]
    assert all(seen["scratch"].values()), seen["scratch"]


def test_what_it_leaves_reaches_no_later_sandbox(victim: Session, attacker: Session) -> None:
    attack(
        attacker,
        """
        for place in ("/workspace", "/tmp", "/dev/shm"):
            with open(place + "/sitecustomize.py", "w") as file:
                file.write("raise SystemExit('owned')")
            with open(place + "/planted", "w") as file:
                file.write("planted")
        result = None
        """,
    )
    later = attack(
        victim,
        """
        import os, sys
        result = {
            "found": [p for p in ("/workspace", "/tmp", "/dev/shm") if os.listdir(p)],
            "sitecustomize": getattr(sys.modules.get("sitecustomize"), "__file__", None),
        }
        """,
    )
    assert later["found"] == []
    # The interpreter's own sitecustomize (Debian's Python has one, read-only) may load; none
    # from a place a sandbox can write.
    planted_in = ("/workspace", "/tmp", "/dev/shm")
    assert not str(later["sitecustomize"] or "").startswith(planted_in), later


def test_another_tenants_files_are_out_of_sight(victim: Session, attacker: Session) -> None:
    running_victim(victim)  # it writes a marker into its workspace
    seen = attack(
        attacker,
        """
        import os
        found = []
        for top in ("/workspace", "/tmp", "/dev/shm", "/"):
            for root, dirs, files in os.walk(top):
                if root.startswith(("/proc", "/usr", "/sys")):
                    dirs[:] = []
                    continue
                found += [os.path.join(root, f) for f in files if f == "marker"]
        result = found
        """,
    )
    assert seen == []


def test_it_reaches_no_private_address(server: ServerProcess, attacker: Session) -> None:
    seen = attack(
        attacker,
        """
        import socket
        def direct(host, port):
            try:
                socket.create_connection((host, port), timeout=3).close()
                return "connected"
            except OSError as exc:
                return type(exc).__name__
        def proxied(request):
            with socket.create_connection(("127.0.0.1", 3128), timeout=10) as proxy:
                proxy.sendall(request.encode())
                return proxy.recv(100).split(b"\\r\\n")[0].decode()
        targets = [("127.0.0.1", 5432), ("127.0.0.1", 6379), ("127.0.0.1", input["api"]),
                   ("169.254.169.254", 80), ("10.0.0.1", 80), ("::1", input["api"])]
        def authority(host, port):
            return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        end = "\\r\\n"
        result = {
            "direct": {authority(h, p): direct(h, p) for h, p in targets},
            "connect": {
                authority(h, p): proxied(f"CONNECT {authority(h, p)} HTTP/1.1{end}{end}")
                for h, p in targets
            },
            "get": {u: proxied(f"GET {u} HTTP/1.1{end}Host: x{end}{end}") for u in input["urls"]},
        }
        """,
        api=server.port,
        urls=[
            f"http://127.0.0.1:{server.port}/healthz",
            f"http://localhost:{server.port}/healthz",
            f"http://[2002:7f00:1::]:{server.port}/healthz",  # 6to4 of 127.0.0.1
            f"http://[::ffff:127.0.0.1]:{server.port}/healthz",
            "http://169.254.169.254/latest/meta-data/",
        ],
    )
    assert "connected" not in seen["direct"].values(), seen["direct"]
    assert all(line.startswith("HTTP/1.1 403") for line in seen["connect"].values()), seen
    assert all(line.startswith("HTTP/1.1 403") for line in seen["get"].values()), seen


def test_limits_hold_for_all_its_processes_together(
    server: ServerProcess, attacker: Session
) -> None:
    seen = attack(
        attacker,
        """
        import os, time
        def fork_bomb():
            children = []
            try:
                for _ in range(1000):
                    pid = os.fork()
                    if pid == 0:
                        time.sleep(30)
                        os._exit(0)
                    children.append(pid)
            except OSError:
                pass
            for pid in children:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            return len(children)
        def fill(path):
            written = 0
            try:
                with open(path, "wb") as file:
                    while written < 4 * input["disk_mb"] * 2**20:
                        file.write(b"x" * 2**20)
                        written += 2**20
            except OSError:
                pass
            os.remove(path)
            return written // 2**20
        def hogs(count, megabytes):
            children = []
            for _ in range(count):
                pid = os.fork()
                if pid == 0:
                    try:
                        block = bytearray(megabytes * 2**20)
                        block[::4096] = b"x" * len(block[::4096])
                        time.sleep(3)
                        os._exit(0)
                    except MemoryError:
                        os._exit(1)
                children.append(pid)
            return sum(os.waitpid(pid, 0)[1] == 0 for pid in children)
        result = {
            "forks": fork_bomb(),
            "shm_mb": fill("/dev/shm/big"),
            "workspace_mb": fill("/workspace/big"),
            "hogs": hogs(6, 150),
        }
        """,
        disk_mb=DISK_LIMIT_MB,
    )
    assert seen["forks"] < MAX_PROCESSES
    assert seen["shm_mb"] <= DISK_LIMIT_MB and seen["workspace_mb"] <= DISK_LIMIT_MB
    if tier(server) == "cgroup":
        # 6 times 150 MB in a 256 MB sandbox: the kernel kills all but (at most) one. (Each
        # alone fits the per-process limit with the ~60 MB of address space a sandbox's
        # interpreter starts with; 200 MB did not once that grew past 56 MB.)
        assert seen["hogs"] <= 1, seen
    else:
        # Without a cgroup the memory limit holds per process only (docs/operations.md).
        assert seen["hogs"] == 6


def test_nothing_it_starts_outlives_its_task(attacker: Session) -> None:
    task_marker = uuid.uuid4().hex
    tag = process_tag(task_marker, "s")
    attack(
        attacker,
        """
        import os, time, ctypes
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                ctypes.CDLL(None).prctl(15, input["tag"].encode(), 0, 0, 0)
                time.sleep(60)
            os._exit(0)
        time.sleep(0.5)
        result = None
        """,
        tag=tag,
    )
    eventually(lambda: not host_pids(tag), timeout=5, what="the detached process gone")


def test_it_holds_no_privilege_even_when_the_server_is_root(
    server: ServerProcess, attacker: Session
) -> None:
    seen = attack(
        attacker,
        """
        import ctypes, errno, os
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        def refused(number, *args):
            ctypes.set_errno(0)
            code = libc.syscall(number, *args)
            return code == -1 and ctypes.get_errno() in (errno.EPERM, errno.EACCES, errno.ENOSYS)
        status = dict(line.split(":\\t") for line in open("/proc/self/status").read().splitlines()
                      if ":\\t" in line)
        def writes(path):
            try:
                with open(path, "w") as file:
                    file.write("|/tmp/x")
                return True
            except OSError:
                return False
        result = {
            "caps": [status[k] for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")],
            "no_new_privs": status["NoNewPrivs"],
            "seccomp": status["Seccomp"],
            "refused": {
                "ptrace": refused(101, 16, 1, 0, 0),  # PTRACE_ATTACH to pid 1
                "mount": refused(165, b"none", b"/tmp", b"tmpfs", 0, 0),
                "unshare": refused(272, 0x10000000),
                "bpf": refused(321, 0, 0, 0),
                "keyctl": refused(250, 0, 0, 0),
                "perf_event_open": refused(298, 0, 0, -1, -1, 0),
                "io_uring_setup": refused(425, 1, 0),
                "clone_newuser": refused(56, 0x10000000 | 17, 0, 0, 0, 0),
            },
            "core_pattern": writes("/proc/sys/kernel/core_pattern"),
            "sysrq": writes("/proc/sysrq-trigger"),
        }
        """,
    )
    assert seen["caps"] == ["0000000000000000"] * 5
    assert seen["no_new_privs"] == "1" and seen["seccomp"] == "2"
    assert all(seen["refused"].values()), seen["refused"]
    assert not seen["core_pattern"] and not seen["sysrq"]


def test_it_holds_no_descriptor_of_the_server(attacker: Session) -> None:
    seen = attack(
        attacker,
        """
        import os, socket, stat
        found = {}
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            try:
                mode = os.fstat(fd).st_mode
            except OSError:
                continue
            kind = "socket" if stat.S_ISSOCK(mode) else "pipe" if stat.S_ISFIFO(mode) else "other"
            listening = False
            if kind == "socket":
                probe = socket.socket(fileno=os.dup(fd))
                listening = bool(probe.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
                probe.close()
            found[fd] = [kind, listening]
        result = found
        """,
    )
    assert not any(listening for _, listening in seen.values()), seen
    # stdin, the two log pipes, the task channel, and the listing's own directory.
    assert len(seen) <= 5, seen
