"""Dashboards over the results database: a read-only live web UI
(dashboards/server.py, ``farm dashboard``) and Grafana dashboards for
PostgreSQL (dashboards/grafana/)."""
