output "webhook_url" {
  description = "Point the CRM's record-change webhook here (signed with the webhook secret)."
  value       = local.urls["crm_webhook"]
}

output "manual_sync_url" {
  description = "The settings API (GET /status, POST /sync, ...)."
  value       = local.urls["manual_sync"]
}

output "page_url" {
  description = "The settings page (CRMSYNC_PAGE_URL): open it in a browser."
  value       = local.environment["CRMSYNC_PAGE_URL"]
}

output "oauth_start_url" {
  description = "Where the page starts connecting a Google account (CRMSYNC_OAUTH_START_URL)."
  value       = local.environment["CRMSYNC_OAUTH_START_URL"]
}

output "oauth_callback_url" {
  description = "Register this as an authorized redirect URI of the OAuth client (CRMSYNC_OAUTH_REDIRECT_URI)."
  value       = local.environment["CRMSYNC_OAUTH_REDIRECT_URI"]
}

output "signin_callback_url" {
  description = "Register this too as an authorized redirect URI: the page's Google sign-in comes back here."
  value       = "${local.environment["CRMSYNC_PAGE_URL"]}signin/callback"
}

output "push_url" {
  description = "The Calendar push receiver (CRMSYNC_PUSH_URL) that watch channels are opened to."
  value       = local.environment["CRMSYNC_PUSH_URL"]
}

output "function_urls" {
  description = "Every function's deterministic run.app URL, by target."
  value       = local.urls
}

output "dead_letter_subscription" {
  description = "Sync jobs that failed every delivery land here for inspection."
  value       = google_pubsub_subscription.jobs_dead_letter.id
}
