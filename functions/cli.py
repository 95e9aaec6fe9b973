"""The command line (``python main.py ...``): demo, sandbox, connect.

Each command parses its arguments, calls into the application, and maps domain
errors to a message on stderr and a non-zero exit code (1; 2 for bad usage).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence

from core.errors import CrmsyncError, UnknownUser
from functions import bootstrap


def cmd_demo(args: argparse.Namespace) -> int:
    from functions.demo import run_demo

    return run_demo(args.profile)


def cmd_sandbox(args: argparse.Namespace) -> int:
    from sandbox import SandboxServer

    server = SandboxServer(port=args.port, profile=args.profile)
    profile = server.sandbox.base_profile
    print(f"Google API sandbox listening on {server.url} (profile {profile})", flush=True)
    print(
        f"  create an account: curl -X POST {server.url}/_sandbox/accounts "
        '-d \'{"email": "me@example.com"}\'',
        flush=True,
    )
    print(f"  use it: CRMSYNC_GOOGLE_ENDPOINT={server.url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


def cmd_connect(args: argparse.Namespace) -> int:
    from functions.accounts import connect

    config = bootstrap.Config.from_env()
    token = sys.stdin.readline().strip() if args.refresh_token == "-" else args.refresh_token
    if not token:
        print("error: empty refresh token", file=sys.stderr)
        return 2
    info = connect(config, args.user, token, verify=not args.no_verify)
    account = info.account_email or "(account email unknown)"
    print(f"connected user {args.user} to Google account {account}; refresh token stored encrypted")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from core.merge import Policy
    from core.ports import no_progress
    from core.runs import Options
    from functions.report import ProgressPrinter, render, to_json
    from functions.sync import run_sections

    config = bootstrap.Config.from_env()
    from adapters.process import LocalProcess

    options = Options(
        dry_run=args.dry_run,
        full=args.full,
        force=args.force,
        policy=Policy(args.policy),
        trigger="cli",
        process=LocalProcess(),  # a rerun takes over the lease of a killed one at once
    )
    progress = no_progress if args.json else ProgressPrinter(sys.stderr)
    store = bootstrap.store(config)
    try:
        reports = run_sections(config, store, args.user, args.section, options, progress)
    finally:
        store.close()
    if args.json:
        print("[" + ",\n".join(to_json(r) for r in reports) + "]")
    else:
        print("\n".join(render(r) for r in reports))
    failed = [e for r in reports for e in r.errors if e.get("kind") != "MalformedDocument"]
    return 1 if failed else 0


def cmd_undo(args: argparse.Namespace) -> int:
    from adapters.process import LocalProcess
    from core.ports import no_progress
    from core.runs import Options
    from functions.report import ProgressPrinter, render, to_json
    from functions.undo import undo

    config = bootstrap.Config.from_env()
    progress = no_progress if args.json else ProgressPrinter(sys.stderr)
    store = bootstrap.store(config)
    # as a sync: a rerun takes over the lease of a killed undo at once
    options = Options(dry_run=args.dry_run, process=LocalProcess())
    try:
        report = undo(config, store, args.run_id, options, progress)
    finally:
        store.close()
    print(to_json(report) if args.json else render(report))
    failed = [e for e in report.errors if e.get("kind") != "UndoConflict"]
    return 1 if failed else 0


def cmd_run_due(args: argparse.Namespace) -> int:
    from functions.jobs import dispatch

    config = bootstrap.Config.from_env()
    store = bootstrap.store(config)
    try:
        jobs = dispatch(config, store)
    finally:
        store.close()
    where = "ran" if config.queue == "inline" else f"queued to {config.queue}"
    print(
        f"{len(jobs)} due sync(s) {where}" + "".join(f"\n  {j.user_id} {j.section}" for j in jobs)
    )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from functions.serve import serve

    return serve(args.port)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="main.py", description="crmsync: CRM <-> Google sync")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="run the walkthrough on the sandbox and a local store")
    demo.add_argument(
        "--profile",
        choices=["default", "realistic"],
        help="the sandbox's realism (default: $CRMSYNC_SANDBOX_PROFILE, else default)",
    )
    demo.set_defaults(run=cmd_demo)

    sandbox = commands.add_parser("sandbox", help="serve the Google API sandbox on 127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8085)
    sandbox.add_argument(
        "--profile",
        choices=["default", "realistic"],
        help="how unkind the sandbox is (default: $CRMSYNC_SANDBOX_PROFILE, else default)",
    )
    sandbox.set_defaults(run=cmd_sandbox)

    connect = commands.add_parser("connect", help="store a user's Google refresh token")
    connect.add_argument("--user", required=True, help="the CRM user id (users/{id})")
    connect.add_argument(
        "--refresh-token",
        required=True,
        help="the Google refresh token, or - to read it from standard input (keeps it out of "
        "the process list and shell history)",
    )
    connect.add_argument(
        "--no-verify", action="store_true", help="store without checking the token with Google"
    )
    connect.set_defaults(run=cmd_connect)

    sync = commands.add_parser("sync", help="run one sync for one user")
    sync.add_argument("--user", required=True, help="the CRM user id")
    sync.add_argument("--section", choices=["contacts", "activities", "all"], default="all")
    sync.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    sync.add_argument("--full", action="store_true", help="ignore cursors: compare everything")
    sync.add_argument("--force", action="store_true", help="override the empty-side guard")
    sync.add_argument(
        "--policy",
        choices=["merge", "crm_wins", "google_wins", "most_recent"],
        default="merge",
        help="conflict policy (default: per-field merge, the newest side wins a field)",
    )
    sync.add_argument("--json", action="store_true", help="print the result as JSON")
    sync.set_defaults(run=cmd_sync)

    undo = commands.add_parser("undo", help="take a sync run back (its own user's)")
    undo.add_argument("run_id", metavar="RUN_ID", help="the run's id (syncRuns/{id})")
    undo.add_argument("--dry-run", action="store_true",
                      help="print what the undo would do, change nothing")  # fmt: skip
    undo.add_argument("--json", action="store_true", help="print the result as JSON")
    undo.set_defaults(run=cmd_undo)

    due = commands.add_parser("run-due", help="start every due sync once (what the scheduler does)")
    due.set_defaults(run=cmd_run_due)

    serve = commands.add_parser("serve", help="serve every HTTP function on one local server")
    serve.add_argument("--port", type=int, default=8080)
    serve.set_defaults(run=cmd_serve)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except UnknownUser as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except CrmsyncError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
