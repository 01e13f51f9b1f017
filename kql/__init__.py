"""Stored KQL queries and the runner (Application Insights or local DuckDB)."""
