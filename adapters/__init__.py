"""I/O adapters: document stores, Google People/Calendar clients, OAuth, tokens."""
