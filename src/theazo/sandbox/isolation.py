"""Isolation tiers: what this host lets a sandbox be, found out at start, and the settings a
deployment chooses (network policy, extra mounts, sizes).

Tiers, weakest first; each holds everything the one before it does:

* ``process``: a process of its own (own process group, resource limits per process, an
  environment without the server's variables, no inherited descriptors). It shares the host's
  files, processes and network with the server's user: it does not hold against an agent that
  attacks.
* ``namespaces``: user, PID, mount, network, IPC, UTS and cgroup namespaces of its own; a
  read-only view of the host's files with private scratch space; no capabilities,
  ``no_new_privs``, a seccomp filter; a process count and a scratch size limit for the whole
  sandbox.
* ``landlock``: also Landlock, a second wall around the files, and (ABI 6) no signals or
  abstract-socket connections out of the sandbox.
* ``cgroup``: also a cgroup per sandbox: memory (its tmpfs included), processes and CPU of all
  its processes together.

The zygote detects the tier (``detect``) by building one sandbox before it reports ready; the
server refuses to start below ``--sandbox-isolation``.
"""

from __future__ import annotations

import enum
import shutil
from dataclasses import dataclass, field
from typing import Any

from theazo.core import defaults
from theazo.sandbox.view import Mount

CLONE_FAILED = "cannot create namespaces"  # how a probe's error begins when the kernel refused


class Tier(enum.IntEnum):
    PROCESS = 0
    NAMESPACES = 1
    LANDLOCK = 2
    CGROUP = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Tier:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(t.label for t in cls)
            raise ValueError(f"unknown isolation tier {text!r} (tiers: {names})") from None


class Network(enum.StrEnum):
    NONE = "none"
    EGRESS = "egress"
    HOST = "host"


@dataclass(frozen=True, slots=True)
class IsolationSettings:
    """What the deployment chose (``theazo serve --sandbox-…``)."""

    minimum: Tier = Tier.NAMESPACES
    network: Network = Network.EGRESS
    mounts: tuple[Mount, ...] = ()
    disk_limit_mb: int = defaults.SANDBOX_DISK_LIMIT_MB
    max_processes: int = defaults.SANDBOX_MAX_PROCESSES
    max_open_files: int = defaults.SANDBOX_MAX_OPEN_FILES
    hidden_paths: tuple[str, ...] = ()  # never shown to a sandbox (the database)
    forwarded_ports: tuple[int, ...] = ()  # loopback ports a sandbox reaches the host's on
    # Set in a sandbox with the egress network, for the server's services on its loopback
    # (the model gateway's base URLs); never anything secret.
    environment: tuple[tuple[str, str], ...] = ()

    def as_message(self) -> dict[str, Any]:
        return {
            "minimum": self.minimum.label,
            "network": self.network.value,
            "mounts": [m.as_message() for m in self.mounts],
            "disk_limit_mb": self.disk_limit_mb,
            "max_processes": self.max_processes,
            "max_open_files": self.max_open_files,
            "hidden_paths": list(self.hidden_paths),
            "forwarded_ports": list(self.forwarded_ports),
            "environment": [list(pair) for pair in self.environment],
        }

    @classmethod
    def from_message(cls, data: dict[str, Any]) -> IsolationSettings:
        return cls(
            minimum=Tier.parse(data["minimum"]),
            network=Network(data["network"]),
            mounts=tuple(Mount.from_message(m) for m in data["mounts"]),
            disk_limit_mb=int(data["disk_limit_mb"]),
            max_processes=int(data["max_processes"]),
            max_open_files=int(data["max_open_files"]),
            hidden_paths=tuple(data["hidden_paths"]),
            forwarded_ports=tuple(int(p) for p in data["forwarded_ports"]),
            environment=tuple((str(k), str(v)) for k, v in data.get("environment", ())),
        )


@dataclass(slots=True)
class Features:
    """What the host allows, as found by building a sandbox."""

    namespaces: bool = False
    namespaces_error: str | None = None  # why not, when not
    landlock_abi: int = 0
    seccomp: bool = False
    seccomp_error: str | None = None
    cgroup: str | None = None  # "v2" or "v1" when sandboxes get a cgroup each
    cgroup_error: str | None = None
    bubblewrap: str | None = field(default_factory=lambda: shutil.which("bwrap"))

    @property
    def tier(self) -> Tier:
        if not (self.namespaces and self.seccomp):
            return Tier.PROCESS
        if not self.landlock_abi:
            return Tier.NAMESPACES
        return Tier.CGROUP if self.cgroup else Tier.LANDLOCK

    def as_message(self) -> dict[str, Any]:
        return {
            "tier": self.tier.label,
            "namespaces": self.namespaces,
            "namespacesError": self.namespaces_error,
            "landlockAbi": self.landlock_abi,
            "seccomp": self.seccomp,
            "seccompError": self.seccomp_error,
            "cgroup": self.cgroup,
            "cgroupError": self.cgroup_error,
            "bubblewrap": self.bubblewrap,
        }


def missing_for(tier: Tier, features: dict[str, Any]) -> list[str]:
    """What this host lacks for ``tier``, each with how to enable it."""
    missing = []
    error = features.get("namespacesError") or ""
    if (
        tier >= Tier.NAMESPACES
        and not features.get("namespaces")
        and error.startswith(CLONE_FAILED)
    ):
        missing.append(
            f"user namespaces ({error}): allow unprivileged user namespaces (sysctl "
            "kernel.unprivileged_userns_clone=1; on Ubuntu also "
            "kernel.apparmor_restrict_unprivileged_userns=0), or run in a container that "
            "permits them"
        )
    elif tier >= Tier.NAMESPACES and not features.get("namespaces"):
        missing.append(f"a working sandbox: building the first one failed ({error})")
    if tier >= Tier.NAMESPACES and not features.get("seccomp"):
        missing.append(
            "seccomp"
            + (f" ({features['seccompError']})" if features.get("seccompError") else "")
            + ": install libseccomp (Debian and Ubuntu: libseccomp2)"
        )
    if tier >= Tier.LANDLOCK and not features.get("landlockAbi"):
        missing.append(
            "Landlock: a Linux 5.13+ kernel with Landlock enabled (add 'landlock' to the lsm= "
            "boot parameter)"
        )
    if tier >= Tier.CGROUP and not features.get("cgroup"):
        missing.append(
            "a delegated cgroup"
            + (f" ({features['cgroupError']})" if features.get("cgroupError") else "")
            + ": run the server in a cgroup v2 subtree it may write, with the memory and pids "
            "controllers (systemd: Delegate=yes), or as root"
        )
    return missing
