"""Prometheus metrics exposed at ``/metrics``: the API process's own counters, and the jobs as
the store knows them (read at each scrape, so they are right however many workers and API
processes there are)."""

from collections.abc import Iterator

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from driftloop.platform.jobs import job_statistics
from driftloop.platform.store.engine import session_scope

INGESTED = Counter("driftloop_ingest_records_total", "Records received over HTTP, by outcome", ["task", "status"])
PREDICTED = Counter("driftloop_predictions_total", "Texts predicted over HTTP", ["task"])
PREDICT_SECONDS = Histogram(
    "driftloop_predict_request_seconds",
    "Prediction requests, from the body read to the answer (queueing and batching included)",
    ["task"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0),
)


class JobsCollector(Collector):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        with session_scope(self.engine) as session:
            statistics = job_statistics(session)
        jobs = GaugeMetricFamily("driftloop_jobs", "Jobs in the store by kind and state", labels=["kind", "state"])
        durations = SummaryMetricFamily(
            "driftloop_job_duration_seconds", "How long ended jobs ran, from start to end, by kind and state", labels=["kind", "state"]
        )
        for statistic in statistics:
            jobs.add_metric([statistic.kind, statistic.state], statistic.count)
            if statistic.timed:
                durations.add_metric([statistic.kind, statistic.state], count_value=statistic.timed, sum_value=statistic.seconds)
        yield from (jobs, durations)
