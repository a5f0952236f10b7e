"""Resource limits of a sandbox, applied by the sandbox process to itself before the agent runs."""

from __future__ import annotations

import resource
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ResourceLimits:
    memory_mb: int  # address space; 0 = unlimited
    cpu_seconds: int  # CPU time; 0 = unlimited

    def as_message(self) -> dict[str, Any]:
        return {"memory_mb": self.memory_mb, "cpu_seconds": self.cpu_seconds}

    @classmethod
    def from_message(cls, data: dict[str, Any]) -> ResourceLimits:
        return cls(memory_mb=int(data["memory_mb"]), cpu_seconds=int(data["cpu_seconds"]))


def apply(limits: ResourceLimits) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash must not fill the disk
    if limits.memory_mb > 0:
        size = limits.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (size, size))
    if limits.cpu_seconds > 0:
        # SIGXCPU at the soft limit; the kernel sends SIGKILL at the hard one a second later.
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
