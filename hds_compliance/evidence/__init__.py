"""Evidence: what a scan keeps for certifiers. Today: redaction of secrets from everything collected."""
