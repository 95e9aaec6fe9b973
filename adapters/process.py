"""This process, as a lease names it: a command-line run records its host and process
id with its lease, so that a rerun on the same machine can tell that the run holding
the lease was killed, and take over at once instead of waiting out the lease."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any


class LocalProcess:
    """The owner facts of this process, and whether another owner is dead."""

    def __init__(self) -> None:
        self.owner = {"host": socket.gethostname(), "pid": os.getpid(), "pids": _pid_space()}

    def dead(self, owner: Any) -> bool:
        """The owner ran on this host, in this process id space (containers that share
        a host name do not share their pids), and its process is gone. Any doubt
        (another host or space, no owner or a corrupt one, no permission to look, a
        reused pid): not dead."""
        if not isinstance(owner, Mapping) or owner.get("host") != self.owner["host"]:
            return False
        if owner.get("pids") != self.owner["pids"] or self.owner["pids"] is None:
            return False
        pid = owner.get("pid")
        if not isinstance(pid, int) or pid <= 0 or pid == self.owner["pid"]:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


def _pid_space() -> str | None:
    """This process's pid namespace (Linux: ``/proc/self/ns/pid``), None if unknown."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
