"""AskPro's domain metrics. Labels stay low-cardinality: never ids, paths or phones.

Counters and histograms are per process; under gunicorn they are written to
``PROMETHEUS_MULTIPROC_DIR`` and summed at scrape time (``monitoring.exposition``).
Gauges that describe shared state (inbox backlog, breakers, queues) are not kept by any
process: ``monitoring.scrape`` reads them when ``/metrics`` is asked.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

webhook_events = Counter(
    "askpro_webhook_events",
    "Webhook deliveries and events by outcome: accepted, duplicate, rejected (at the "
    "door, 4xx/5xx) and processed, ignored, failed, dead (by the workers).",
    ["provider", "outcome"],
)
webhook_processing_seconds = Histogram(
    "askpro_webhook_processing_seconds",
    "Time a worker spent applying one webhook event (claim to outcome).",
    ["provider"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
webhook_lag_seconds = Histogram(
    "askpro_webhook_lag_seconds",
    "From receipt to a final outcome (processed, ignored, dead): processing freshness.",
    ["provider"],
    buckets=(0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0),
)
bookings = Counter(
    "askpro_bookings",
    "Booking attempts by source (api, voice, admin, calendar) and outcome (booked, "
    "pending, slot_taken, rejected).",
    ["source", "outcome"],
)
tool_call_seconds = Histogram(
    "askpro_tool_call_seconds",
    "Time to answer one live tool call of the voice agent, signature check included.",
    ["tool"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0),
)
tool_calls = Counter(
    "askpro_tool_calls",
    "Live tool calls by outcome: ok, refused (a spoken refusal), unauthorized, error.",
    ["tool", "outcome"],
)
