"""The local Google API sandbox: People v1, Calendar v3 and OAuth 2.0 on 127.0.0.1.

``SandboxServer`` serves a ``Sandbox`` (all state, in memory) over HTTP; the real
google-api-python-client reaches it through ``client_options={"api_endpoint": ...}``.
"""

from sandbox.app import Sandbox
from sandbox.server import SandboxServer

__all__ = ["Sandbox", "SandboxServer"]
