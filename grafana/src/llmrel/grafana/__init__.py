"""Grafana dashboards and alert rules as code, provisioning export and push."""
