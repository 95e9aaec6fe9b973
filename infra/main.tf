locals {
  http_functions  = ["manual_sync", "crm_webhook", "oauth_start", "oauth_callback", "calendar_push"]
  event_functions = { dispatch_due = "sync-ticks", run_sync_job = "sync-jobs" }
  # taken from their topic by an explicit push subscription (with a dead-letter policy)
  pushed_functions = ["run_sync_job"]
  pubsub_agent     = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
  # every function target: its topic, or "" for an HTTP function
  functions = merge({ for name in local.http_functions : name => "" }, local.event_functions)
  # memory per function, from bench/cost.py's measured peaks (README, "Scheduling"), with
  # headroom: a sync run (and manual_sync's preview, which plans in process) peaks at
  # 171 MiB after a 25k-contact first push, 121 MiB during it; the tick at 100k users
  # and the HTTP entry points stay near the idle 70 MiB
  memory = {
    run_sync_job   = "512Mi"
    manual_sync    = "512Mi"
    dispatch_due   = "256Mi"
    crm_webhook    = "256Mi"
    calendar_push  = "256Mi"
    oauth_start    = "256Mi"
    oauth_callback = "256Mi"
  }
  # A gen2 function (Cloud Functions v2 API) runs as the Cloud Run service of its name,
  # hyphenated (google_cloudfunctions2_function.fn), on a run.app host of its own. The
  # functions are one for_each resource, so none can read a sibling's
  # service_config[0].uri (a cycle). Cloud Run's documented deterministic URL
  # https://SERVICE_NAME-PROJECT_NUMBER.REGION.run.app ("Deterministic URL" in
  # cloud.google.com/run/docs/triggering/https-request) is known before the services
  # exist, so every function is told every address at once. It is assigned while the
  # DNS label (name, "-", project number) fits in 63 characters: 27 at most here. The
  # function's postcondition checks that each service carries the name used here.
  service_names = { for name in keys(local.functions) : name => replace(name, "_", "-") }
  run_host      = "${data.google_project.this.number}.${var.region}.run.app"
  urls          = { for name, service in local.service_names : name => "https://${service}-${local.run_host}" }
  environment = {
    CRMSYNC_STORE           = "firestore"
    CRMSYNC_QUEUE           = "pubsub:${google_pubsub_topic.jobs.id}"
    CRMSYNC_TOKEN_KEY       = google_kms_crypto_key.tokens.id
    CRMSYNC_GROUP_NAME      = var.group_name
    CRMSYNC_OAUTH_CLIENT_ID = var.oauth_client_id
    CRMSYNC_PUSH_URL        = local.urls["calendar_push"]
    # the browser connects through the page's own host (manual_sync serves both routes):
    # its session and nonce cookies never reach another run.app host
    CRMSYNC_OAUTH_REDIRECT_URI = "${local.urls["manual_sync"]}/oauth_callback"
    CRMSYNC_OAUTH_START_URL    = "${local.urls["manual_sync"]}/oauth_start"
    CRMSYNC_PAGE_URL           = "${local.urls["manual_sync"]}/"
    # Workspace domain-wide delegation: the domains it acts for ("" = none)
    CRMSYNC_DELEGATION_DOMAINS = join(",", var.delegation_domains)
    GOOGLE_CLOUD_PROJECT       = var.project
  }
  secrets = {
    CRMSYNC_WEBHOOK_SECRET      = google_secret_manager_secret.webhook.secret_id
    CRMSYNC_OAUTH_CLIENT_SECRET = google_secret_manager_secret.oauth_client.secret_id
    CRMSYNC_SESSION_KEY         = google_secret_manager_secret.session.secret_id
  }
  # the delegation's service account key, only when a domain is delegated
  delegated          = length(var.delegation_domains) > 0
  delegation_secrets = local.delegated ? { CRMSYNC_DELEGATION_KEY = google_secret_manager_secret.delegation[0].secret_id } : {}
  runtime_secrets    = merge(local.secrets, local.delegation_secrets)
}

# --- source -----------------------------------------------------------------------------

resource "google_storage_bucket" "source" {
  # checkov:skip=CKV_GCP_62:holds only the functions' source archives, no user data; access is by the deploying identity alone
  name                        = "${var.project}-crmsync-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true
  versioning {
    enabled = true
  }
}

data "archive_file" "source" {
  type        = "zip"
  source_dir  = "${path.module}/.."
  output_path = "${path.module}/.build/crmsync.zip"
  excludes = [
    ".venv", ".venv-tools", ".git", ".crmsync", ".hypothesis", ".pytest_cache", ".ruff_cache",
    "tests", "tests/e2e/artifacts", "bench", "infra", "sandbox",
  ]
}

resource "google_storage_bucket_object" "source" {
  name   = "crmsync-${data.archive_file.source.output_md5}.zip"
  bucket = google_storage_bucket.source.name
  source = data.archive_file.source.output_path
}

# --- identities (least privilege) ----------------------------------------------------

resource "google_service_account" "runtime" {
  account_id   = "crmsync-runtime"
  display_name = "crmsync functions at run time"
}

resource "google_service_account" "invoker" {
  account_id   = "crmsync-invoker"
  display_name = "Eventarc and Scheduler: invoke the Pub/Sub-triggered functions"
}

resource "google_project_iam_member" "runtime_firestore" {
  project = var.project
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.runtime.email}"
}

resource "google_pubsub_topic_iam_member" "runtime_publishes_jobs" {
  topic  = google_pubsub_topic.jobs.id
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${google_service_account.runtime.email}"
}

resource "google_kms_crypto_key_iam_member" "runtime_tokens" {
  crypto_key_id = google_kms_crypto_key.tokens.id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = "serviceAccount:${google_service_account.runtime.email}"
}

resource "google_secret_manager_secret_iam_member" "runtime_secrets" {
  for_each  = local.runtime_secrets
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.runtime.email}"
}

# --- Firestore ---------------------------------------------------------------------------

resource "google_firestore_database" "default" {
  name        = "(default)"
  location_id = var.firestore_location
  type        = "FIRESTORE_NATIVE"
}

# Composite indexes for every query the code makes with more than one field
# (tests/integration/test_infra.py records the queries and holds this list against them).
resource "google_firestore_index" "links_by_user_section" {
  database   = google_firestore_database.default.name
  collection = "links"
  fields {
    field_path = "userId"
    order      = "ASCENDING"
  }
  fields {
    field_path = "section"
    order      = "ASCENDING"
  }
  fields {
    field_path = "crmId"
    order      = "ASCENDING"
  }
}

resource "google_firestore_index" "links_by_user_google_id" {
  database   = google_firestore_database.default.name
  collection = "links"
  fields {
    field_path = "userId"
    order      = "ASCENDING"
  }
  fields {
    field_path = "googleId"
    order      = "ASCENDING"
  }
}

# an account switch archives links per old account and restores them on coming back
resource "google_firestore_index" "link_archive_by_account" {
  database   = google_firestore_database.default.name
  collection = "linkArchive"
  fields {
    field_path = "userId"
    order      = "ASCENDING"
  }
  fields {
    field_path = "section"
    order      = "ASCENDING"
  }
  fields {
    field_path = "accountEmail"
    order      = "ASCENDING"
  }
  fields {
    field_path = "crmId"
    order      = "ASCENDING"
  }
}

resource "google_firestore_index" "runs_by_user" {
  database   = google_firestore_database.default.name
  collection = "syncRuns"
  fields {
    field_path = "userId"
    order      = "ASCENDING"
  }
  fields {
    field_path = "startedAt"
    order      = "DESCENDING"
  }
}

# the settings page's "last checked": the latest batch of scheduled looks at a pair
resource "google_firestore_index" "checks_by_pair" {
  database   = google_firestore_database.default.name
  collection = "syncChecks"
  fields {
    field_path   = "pairs"
    array_config = "CONTAINS"
  }
  fields {
    field_path = "checkedAt"
    order      = "DESCENDING"
  }
}

# --- secrets and keys ------------------------------------------------------------------

resource "google_secret_manager_secret" "webhook" {
  secret_id = "crmsync-webhook-secret"
  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "webhook" {
  secret      = google_secret_manager_secret.webhook.id
  secret_data = var.webhook_secret
}

resource "google_secret_manager_secret" "oauth_client" {
  secret_id = "crmsync-oauth-client-secret"
  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "oauth_client" {
  secret      = google_secret_manager_secret.oauth_client.id
  secret_data = var.oauth_client_secret
}

# seals the page's session cookies and the sign-in and connect states; the functions
# refuse to sign anyone in without it
resource "google_secret_manager_secret" "session" {
  secret_id = "crmsync-session-key"
  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "session" {
  secret      = google_secret_manager_secret.session.id
  secret_data = var.session_key

  lifecycle {
    precondition {
      condition     = length(var.session_key) >= 32
      error_message = "session_key must be at least 32 random characters (e.g. openssl rand -base64 32)."
    }
  }
}

# the Workspace domain-wide delegation's service account key (JSON), read by the functions
# as CRMSYNC_DELEGATION_KEY; the administrator authorizes its client id in the Admin console
resource "google_secret_manager_secret" "delegation" {
  count     = local.delegated ? 1 : 0
  secret_id = "crmsync-delegation-key"
  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "delegation" {
  count       = local.delegated ? 1 : 0
  secret      = google_secret_manager_secret.delegation[0].id
  secret_data = var.delegation_key

  lifecycle {
    precondition {
      condition     = trimspace(var.delegation_key) != ""
      error_message = "delegation_domains is set, but delegation_key is empty: give the service account's JSON key (or leave delegation_domains empty)."
    }
  }
}

resource "google_kms_key_ring" "crmsync" {
  name     = "crmsync"
  location = var.region
}

resource "google_kms_crypto_key" "tokens" {
  name            = "refresh-tokens"
  key_ring        = google_kms_key_ring.crmsync.id
  rotation_period = "7776000s"
  lifecycle {
    prevent_destroy = true
  }
}

resource "google_kms_crypto_key" "pubsub" {
  name            = "pubsub"
  key_ring        = google_kms_key_ring.crmsync.id
  rotation_period = "7776000s"
  lifecycle {
    prevent_destroy = true
  }
}

data "google_project" "this" {}

resource "google_kms_crypto_key_iam_member" "pubsub_agent" {
  crypto_key_id = google_kms_crypto_key.pubsub.id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = local.pubsub_agent
}

# --- topics, schedule ------------------------------------------------------------------

resource "google_pubsub_topic" "ticks" {
  name         = "sync-ticks"
  kms_key_name = google_kms_crypto_key.pubsub.id
  depends_on   = [google_kms_crypto_key_iam_member.pubsub_agent]
}

resource "google_pubsub_topic" "jobs" {
  name         = "sync-jobs"
  kms_key_name = google_kms_crypto_key.pubsub.id
  depends_on   = [google_kms_crypto_key_iam_member.pubsub_agent]
}

resource "google_pubsub_topic" "jobs_dead_letter" {
  name         = "sync-jobs-dead-letter"
  kms_key_name = google_kms_crypto_key.pubsub.id
  depends_on   = [google_kms_crypto_key_iam_member.pubsub_agent]
}

resource "google_pubsub_subscription" "jobs_dead_letter" {
  name                       = "sync-jobs-dead-letter"
  topic                      = google_pubsub_topic.jobs_dead_letter.id
  message_retention_duration = "604800s"
}

# run_sync_job is pushed to by this subscription (functions-framework turns a raw Pub/Sub
# push into the CloudEvent the function takes), not by an Eventarc trigger: a trigger's
# subscription cannot be given a dead-letter policy in Terraform. Pub/Sub reaches the
# internal-only function at its run.app URL (same project), authenticated as invoker.
resource "google_pubsub_subscription" "jobs" {
  name                       = "sync-jobs-push"
  topic                      = google_pubsub_topic.jobs.id
  ack_deadline_seconds       = 600 # over the function's 540 s timeout
  message_retention_duration = "604800s"
  push_config {
    push_endpoint = google_cloudfunctions2_function.fn["run_sync_job"].service_config[0].uri
    oidc_token {
      service_account_email = google_service_account.invoker.email
    }
  }
  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }
  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.jobs_dead_letter.id
    max_delivery_attempts = 5
  }
}

# Pub/Sub's own agent forwards dead letters, acknowledges the originals, and signs the
# push requests' ID tokens for the invoker identity.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  topic  = google_pubsub_topic.jobs_dead_letter.id
  role   = "roles/pubsub.publisher"
  member = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "jobs_subscriber" {
  subscription = google_pubsub_subscription.jobs.id
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

resource "google_service_account_iam_member" "pubsub_signs_for_invoker" {
  service_account_id = google_service_account.invoker.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}

resource "google_cloud_scheduler_job" "tick" {
  name      = "crmsync-tick"
  schedule  = "* * * * *"
  time_zone = "Etc/UTC"
  pubsub_target {
    topic_name = google_pubsub_topic.ticks.id
    data       = base64encode("{}")
  }
}

# --- functions ---------------------------------------------------------------------------

resource "google_cloudfunctions2_function" "fn" {
  # checkov:skip=CKV_GCP_124:the HTTP ones are reached by the CRM, browsers and Google's push; each authenticates in code (ID token, HMAC, channel token, OAuth state)
  for_each = local.functions
  name     = local.service_names[each.key]
  location = var.region
  build_config {
    runtime     = "python311"
    entry_point = each.key
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }
  service_config {
    service_account_email = google_service_account.runtime.email
    max_instance_count    = each.key == "dispatch_due" ? 1 : 20
    available_memory      = lookup(local.memory, each.key, "256Mi")
    timeout_seconds       = each.value == "" ? 300 : 540
    ingress_settings      = each.value == "" ? "ALLOW_ALL" : "ALLOW_INTERNAL_ONLY"
    environment_variables = local.environment
    dynamic "secret_environment_variables" {
      for_each = local.runtime_secrets
      content {
        key        = secret_environment_variables.key
        project_id = var.project
        secret     = secret_environment_variables.value
        version    = "latest"
      }
    }
  }
  # Eventarc-triggered functions (the tick), invoked by their own identity; sync-jobs
  # reaches run_sync_job through google_pubsub_subscription.jobs instead.
  dynamic "event_trigger" {
    for_each = each.value == "" || contains(local.pushed_functions, each.key) ? [] : [each.value]
    content {
      trigger_region        = var.region
      event_type            = "google.cloud.pubsub.topic.v1.messagePublished"
      pubsub_topic          = event_trigger.value == "sync-ticks" ? google_pubsub_topic.ticks.id : google_pubsub_topic.jobs.id
      retry_policy          = "RETRY_POLICY_DO_NOT_RETRY" # a missed tick is made up by the next
      service_account_email = google_service_account.invoker.email
    }
  }
  # "latest" of each secret must exist, and be readable, before an instance starts
  depends_on = [
    google_secret_manager_secret_version.webhook,
    google_secret_manager_secret_version.oauth_client,
    google_secret_manager_secret_version.session,
    google_secret_manager_secret_version.delegation,
    google_secret_manager_secret_iam_member.runtime_secrets,
  ]
  lifecycle {
    # local.urls assumes the Cloud Run service is named as the function (short name or
    # projects/P/locations/R/services/NAME)
    postcondition {
      condition     = reverse(split("/", self.service_config[0].service))[0] == local.service_names[each.key]
      error_message = "The function's Cloud Run service is not named as local.urls assumes."
    }
  }
}

# The HTTP functions authenticate their callers in code (ID tokens, HMAC signatures,
# channel tokens, OAuth state), so they are reachable from the internet.
resource "google_cloud_run_service_iam_member" "http_public" {
  # checkov:skip=CKV_GCP_102:the HTTP functions authenticate every caller in code; see above
  for_each = { for name, fn in google_cloudfunctions2_function.fn : name => fn if local.functions[name] == "" }
  location = each.value.location
  service  = each.value.service_config[0].service
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# Pub/Sub-triggered functions are invoked only by the invoker identity, never publicly.
resource "google_cloud_run_service_iam_member" "event_invoker" {
  for_each = { for name, fn in google_cloudfunctions2_function.fn : name => fn if local.functions[name] != "" }
  location = each.value.location
  service  = each.value.service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.invoker.email}"
}
