"""The hub's Prometheus metrics, in one registry, served at ``/metrics``.

Every counter of the hub is declared here, so a reader finds them all in one place and any
module increments them by importing this one::

    from hub import metrics
    metrics.VERIFICATIONS.labels(verdict="genuine").inc()

They are per process (each hub process of a scaled-out deployment is scraped on its own), in
a registry of their own rather than prometheus-client's global one, so that importing the
hub never changes what another program in the same process exports.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)

# Ingestion (hub.ingest.service) ------------------------------------------------------------
INGEST_MESSAGES = Counter(
    "yima_ingest_messages", "MQTT messages taken off the ingest queue", registry=REGISTRY
)
INGEST_EVENTS = Counter(
    "yima_ingest_events",
    "Station events by outcome: applied, refused (the ack says why) or duplicate",
    ["outcome"],
    registry=REGISTRY,
)
INGEST_TRANSACTIONS = Counter(
    "yima_ingest_transactions", "Ingest transactions committed", registry=REGISTRY
)
INGEST_FAILURES = Counter(
    "yima_ingest_failures",
    "Ingest transactions that failed (nothing acked; the stations send again)",
    registry=REGISTRY,
)
DEAD_LETTERS = Counter("yima_dead_letters", "MQTT messages kept as dead letters", registry=REGISTRY)
ACK_SECONDS = Histogram(
    "yima_ingest_ack_seconds",
    "From taking a batch of messages off the queue to publishing its acks (apply + commit)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
INGEST_QUEUE = Gauge(
    "yima_ingest_queue_messages", "MQTT messages waiting to be applied", registry=REGISTRY
)

# Consumers (hub.verify) ----------------------------------------------------------------------
VERIFICATIONS = Counter(
    "yima_verifications", "Consumer verifications by verdict", ["verdict"], registry=REGISTRY
)

# Background jobs (code generation, exports, imports, recalls) -------------------------------
JOB_DONE = Gauge(
    "yima_job_done_units",
    "Units (codes, rows) a running or finished job has done",
    ["job", "kind"],
    registry=REGISTRY,
)
JOB_TOTAL = Gauge(
    "yima_job_total_units", "Units a job has to do in all", ["job", "kind"], registry=REGISTRY
)
JOBS_FINISHED = Counter(
    "yima_jobs_finished", "Jobs by kind and outcome", ["kind", "outcome"], registry=REGISTRY
)

# HTTP and users (hub.web) -------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "yima_http_requests",
    "HTTP requests by route template, method and status",
    ["method", "route", "status"],
    registry=REGISTRY,
)
LOGINS = Counter(
    "yima_logins", "Login attempts by outcome: ok, refused, locked", ["outcome"], registry=REGISTRY
)
RECALLED = Counter("yima_recalled_codes", "Codes moved to recalled", registry=REGISTRY)


def job_progress(job: str | int, kind: str, done: int, total: int) -> None:
    """Report a job's progress (call as often as convenient; it only sets two gauges)."""
    JOB_DONE.labels(job=str(job), kind=kind).set(done)
    JOB_TOTAL.labels(job=str(job), kind=kind).set(total)


def render() -> tuple[bytes, str]:
    """The Prometheus text exposition of every metric, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
