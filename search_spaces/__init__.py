"""Default search spaces, one YAML per task (shipped as package data)."""
