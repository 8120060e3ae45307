"""Evidence: what a scan keeps for certifiers: redaction of secrets from everything collected, and signed
bundles (the catalogue snapshot, the manifest and its envelope, verify)."""
