"""A real race, on the real sandbox: someone edits Google right after our listing."""

from __future__ import annotations


class EditsAfterListing:
    """Wraps a Google port; right after its first ``changes()`` listing, ``edit()`` runs
    (a user's edit in Google), so that our conditional write meets a stale etag."""

    def __init__(self, port, edit):
        self.port, self.edit, self.done = port, edit, False

    def changes(self, *args):
        listed = self.port.changes(*args)
        if not self.done:
            self.done = True
            self.edit()
        return listed

    def __getattr__(self, name):
        return getattr(self.port, name)
