"""Start and stop Google's local emulators (Cloud Firestore, Pub/Sub) for tests.

The emulators come from the google-cloud-cli packages; the SDK root is found with
``gcloud info``. ``locate(kind)`` says where an emulator is, or ``(None, reason)`` when
it is absent. ``start(kind)`` runs it on a free 127.0.0.1 port in a process group of its
own, waits (bounded) until it answers HTTP, and returns an ``Emulator`` whose ``stop()``
kills the whole group. ``session(kind)`` is the body of a session fixture: it skips the
tests when the emulator is absent, or fails them when ``CI=true``. ``clear_firestore``
empties one project of the Firestore emulator.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NoReturn

Kind = Literal["firestore", "pubsub"]

BINARIES: dict[str, str] = {
    "firestore": "platform/cloud-firestore-emulator/cloud_firestore_emulator",
    "pubsub": "platform/pubsub-emulator/bin/cloud-pubsub-emulator",
}
ENV_VARS: dict[str, str] = {
    "firestore": "FIRESTORE_EMULATOR_HOST",
    "pubsub": "PUBSUB_EMULATOR_HOST",
}
STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


class EmulatorError(RuntimeError):
    """An emulator that is absent or would not start; ``exited`` if it quit early."""

    def __init__(self, message: str, *, exited: bool = False) -> None:
        super().__init__(message)
        self.exited = exited


@functools.cache
def sdk_root() -> tuple[Path | None, str]:
    """The Google Cloud SDK root, or ``(None, reason)``."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        return None, "gcloud is not on PATH (install google-cloud-cli)"
    try:
        out = subprocess.run(
            [gcloud, "info", "--format=value(installation.sdk_root)"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.strip()
    except (subprocess.SubprocessError, OSError) as exc:
        return None, f"`gcloud info` failed: {exc}"
    if not out:
        return None, "`gcloud info` did not report an SDK root"
    return Path(out), ""


def locate(kind: Kind) -> tuple[Path | None, str]:
    """The emulator's launcher, or ``(None, reason)`` when it is not installed."""
    root, reason = sdk_root()
    if root is None:
        return None, reason
    binary = root / BINARIES[kind]
    if not os.access(binary, os.X_OK):
        package = f"google-cloud-cli-{kind}-emulator"
        return None, f"{binary} is missing (install {package})"
    if shutil.which("java") is None:
        return None, f"the {kind} emulator needs Java, and java is not on PATH"
    return binary, ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Emulator:
    """A running emulator process group."""

    kind: Kind
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    started_in: float = field(default=0.0)

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, the value for ``FIRESTORE_EMULATOR_HOST`` and the like."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def env_var(self) -> str:
        return ENV_VARS[self.kind]

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Kill the whole process group (the launcher script and its JVM) and wait
        until none of it is left: SIGTERM first, SIGKILL after ``STOP_TIMEOUT``."""
        group = self.process.pid  # start_new_session: the group id is the launcher's pid
        for sig in (signal.SIGTERM, signal.SIGKILL):
            _kill_group(group, sig)
            with suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=STOP_TIMEOUT)
            if _wait_group_gone(group, STOP_TIMEOUT):
                break
        self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _kill_group(group: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(group, sig)


def _group_alive(group: int) -> bool:
    """Whether a live (not zombie) process is left in ``group``. Reads /proc where it
    exists, as an orphaned zombie may linger when PID 1 does not reap."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        with suppress(OSError, ValueError, IndexError):
            state, _ppid, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
            if int(pgrp) == group and state != "Z":
                return True
    return False


def _wait_group_gone(group: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _group_alive(group):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _command(kind: Kind, binary: Path, port: int) -> list[str]:
    if kind == "firestore":
        return [str(binary), "start", "--host=127.0.0.1", f"--port={port}"]
    return [str(binary), "--host=127.0.0.1", f"--port={port}"]


# Local requests must not go through an HTTP proxy configured in the environment.
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(method: str, url: str, *, timeout: float = 10) -> bytes:
    """One plain HTTP request to an emulator (no proxy); raises on HTTP errors."""
    request = urllib.request.Request(url, method=method)
    with _LOCAL.open(request, timeout=timeout) as response:
        return response.read()


def clear_firestore(emulator: Emulator, project: str) -> None:
    """Delete every document of ``project`` in the Firestore emulator."""
    http("DELETE", f"{emulator.url}/emulator/v1/projects/{project}/databases/(default)/documents")


def _answers(url: str) -> bool:
    try:
        with _LOCAL.open(url, timeout=1) as response:
            return response.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (OSError, ValueError):
        return False


def _wait_ready(emulator: Emulator, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _answers(emulator.url + "/"):
            return
        if emulator.process.poll() is not None:
            raise EmulatorError(
                f"{emulator.kind} emulator exited with {emulator.process.returncode}:\n"
                + emulator.log_tail(),
                exited=True,
            )
        time.sleep(0.1)
    tail = emulator.log_tail()
    raise EmulatorError(f"{emulator.kind} emulator not ready after {timeout:.0f} s:\n{tail}")


def start(kind: Kind, *, timeout: float = STARTUP_TIMEOUT, tries: int = 3) -> Emulator:
    """Start the emulator on a free port and wait until it answers HTTP.

    Raises ``EmulatorError`` when it is absent or would not start. An emulator that
    exits at once (say, its port was taken in the meantime) is tried again on another
    port, up to ``tries`` times; one that hangs is not."""
    binary, reason = locate(kind)
    if binary is None:
        raise EmulatorError(reason)
    for attempt in range(1, tries + 1):
        try:
            return _start_once(kind, binary, timeout)
        except EmulatorError as exc:
            if not exc.exited or attempt == tries:
                raise
    raise AssertionError("unreachable")


def _start_once(kind: Kind, binary: Path, timeout: float) -> Emulator:
    port = free_port()
    fd, log_name = tempfile.mkstemp(prefix=f"{kind}-emulator-", suffix=".log")
    began = time.monotonic()
    with os.fdopen(fd, "wb") as log:
        process = subprocess.Popen(
            _command(kind, binary, port),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    emulator = Emulator(kind, port, process, Path(log_name))
    try:
        _wait_ready(emulator, timeout)
    except BaseException:
        emulator.stop()
        raise
    emulator.started_in = time.monotonic() - began
    return emulator


def start_firestore(*, timeout: float = STARTUP_TIMEOUT) -> Emulator:
    return start("firestore", timeout=timeout)


def start_pubsub(*, timeout: float = STARTUP_TIMEOUT) -> Emulator:
    return start("pubsub", timeout=timeout)


def unavailable(kind: Kind, reason: str) -> NoReturn:
    """Skip the requesting tests, or fail them under ``CI=true`` (where the emulators
    must be there). Call from a fixture."""
    import pytest

    message = f"{kind} emulator unavailable: {reason}"
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"{message} (CI=true: emulator tests must run)", pytrace=False)
    pytest.skip(message)


def session(kind: Kind) -> Iterator[Emulator]:
    """Body of a session-scoped fixture: yields a running emulator, stops it after."""
    try:
        emulator = start(kind)
    except EmulatorError as exc:
        unavailable(kind, str(exc))
    try:
        yield emulator
    finally:
        emulator.stop()
