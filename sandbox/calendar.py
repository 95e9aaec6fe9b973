"""calendar API of the sandbox (to be written)."""

from sandbox.app import Router


def register(router: Router) -> None:
    pass
