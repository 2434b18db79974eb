"""Grafana as code: dashboards and provisioning made by Python, pushed with grafana-client."""
