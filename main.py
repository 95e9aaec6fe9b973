"""crmsync entry point: the functions-framework targets and the command line.

Cloud Functions load targets from this module; ``python main.py COMMAND`` runs the
CLI (see ``python main.py --help``).
"""

import sys

from functions.cli import main
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

if __name__ == "__main__":
    sys.exit(main())
