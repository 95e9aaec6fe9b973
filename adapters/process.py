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
        self.owner = {"host": socket.gethostname(), "pid": os.getpid()}

    def dead(self, owner: Mapping[str, Any] | None) -> bool:
        """The owner ran on this host, and its process is gone. Any doubt (another
        host, no owner, no permission to look, a reused pid): not dead."""
        if not owner or owner.get("host") != self.owner["host"]:
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
