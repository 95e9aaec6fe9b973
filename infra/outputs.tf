output "webhook_url" {
  description = "Point the CRM's record-change webhook here (signed with the webhook secret)."
  value       = google_cloudfunctions2_function.fn["crm_webhook"].service_config[0].uri
}

output "manual_sync_url" {
  description = "The settings API and page."
  value       = google_cloudfunctions2_function.fn["manual_sync"].service_config[0].uri
}

output "oauth_callback_url" {
  description = "Register this as an authorized redirect URI of the OAuth client."
  value       = google_cloudfunctions2_function.fn["oauth_callback"].service_config[0].uri
}

output "dead_letter_subscription" {
  description = "Sync jobs that failed every delivery land here for inspection."
  value       = google_pubsub_subscription.jobs_dead_letter.id
}
