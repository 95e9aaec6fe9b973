variable "project" {
  description = "Google Cloud project id."
  type        = string
}

variable "region" {
  description = "Region of the functions, topics and key ring."
  type        = string
  default     = "europe-west1"
}

variable "firestore_location" {
  description = "Location of the Firestore database."
  type        = string
  default     = "eur3"
}

variable "oauth_client_id" {
  description = "OAuth client id of the Google Cloud project (Web application)."
  type        = string
}

variable "oauth_client_secret" {
  description = "OAuth client secret; kept in Secret Manager."
  type        = string
  sensitive   = true
}

variable "webhook_secret" {
  description = "HMAC key shared with the CRM for webhook signatures; kept in Secret Manager."
  type        = string
  sensitive   = true
}

variable "session_key" {
  description = "Random key (32+ characters) that seals the settings page's sessions and OAuth states; kept in Secret Manager. Generate one: openssl rand -base64 32."
  type        = string
  sensitive   = true
}

variable "delegation_domains" {
  description = "Workspace domains whose CRM users crmsync acts for through domain-wide delegation (no per-user OAuth); empty: none."
  type        = list(string)
  default     = []
}

variable "delegation_key" {
  description = "JSON key of the service account the Workspace administrator authorized for domain-wide delegation; kept in Secret Manager. Needed when delegation_domains is set."
  type        = string
  sensitive   = true
  default     = ""
}

variable "group_name" {
  description = "Name of the Google contact group the sync uses."
  type        = string
  default     = "CRM"
}
