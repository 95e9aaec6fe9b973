"""Entry points: one thin module per trigger, the CLI, and the composition root."""
