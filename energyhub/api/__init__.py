"""The HTTP API (FastAPI): sites, load, meters, plans and approvals, health and metrics."""
