"""Prometheus metrics exposed at ``/metrics``."""

from prometheus_client import Counter

INGESTED = Counter("driftloop_ingest_records_total", "Records received over HTTP, by outcome", ["task", "status"])
