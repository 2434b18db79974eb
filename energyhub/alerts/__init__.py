"""Monitoring alerts: rules per site, incremental debounced evaluation, delivery."""
