"""Observability: logs and log shipping, traces, and every Prometheus metric."""
