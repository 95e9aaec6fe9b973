"""crmsync entry point: the functions-framework targets and the command line.

Cloud Functions load targets from this module; ``python main.py COMMAND`` runs the
CLI (see ``python main.py --help``).
"""

import sys

import functions_framework

from functions.cli import main
from functions.http_errors import HANDLERS
from functions.manual import manual_sync
from functions.oauth import oauth_callback, oauth_start
from functions.push import calendar_push
from functions.scheduler import dispatch_due, run_sync_job
from functions.webhook import crm_webhook

__all__ = [
    "calendar_push",
    "crm_webhook",
    "dispatch_due",
    "manual_sync",
    "oauth_callback",
    "oauth_start",
    "run_sync_job",
]

# errors are mapped here, once, for every function: create_app runs this module for each
# app and points functions_framework.errorhandler at that app (a no-op elsewhere)
for error, handler in HANDLERS.items():
    functions_framework.errorhandler(error)(handler)

if __name__ == "__main__":
    sys.exit(main())
