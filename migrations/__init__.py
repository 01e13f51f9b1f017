"""Versioned SQL migrations per dialect and the runner that applies them."""
