"""crmsync entry point: the functions-framework targets and the command line.

Cloud Functions load targets from this module; ``python main.py COMMAND`` runs the
CLI (see ``python main.py --help``).
"""

import sys

import functions_framework

from functions.cli import main
from functions.http_errors import as_json
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

# every error answers JSON (each function's app loads this module; a no-op elsewhere)
functions_framework.errorhandler(Exception)(as_json)

if __name__ == "__main__":
    sys.exit(main())
