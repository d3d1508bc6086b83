"""Prometheus metrics of the integrations layer (low-cardinality labels only)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# askpro_breaker_state is read from the shared store at scrape time (monitoring.metrics),
# so every process reports the same value; these counters are per process and summed.
STATE_VALUES = {"closed": 0, "forced_closed": 0, "half_open": 1, "open": 2, "forced_open": 2}

breaker_transitions = Counter(
    "askpro_breaker_transitions_total",
    "Circuit breaker state changes made by this process.",
    ["breaker", "from_state", "to_state"],
)
breaker_rejections = Counter(
    "askpro_breaker_rejections_total",
    "Calls refused at once because the breaker was open.",
    ["breaker"],
)
breaker_store_fallbacks = Counter(
    "askpro_breaker_local_fallback_total",
    "Breaker operations served by the process-local store because Redis failed.",
    ["breaker"],
)
external_request_seconds = Histogram(
    "askpro_external_request_seconds",
    "One attempt of one outbound HTTP request, by provider, operation and outcome.",
    ["provider", "operation", "outcome"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
integration_retries = Counter(
    "askpro_external_retries_total",
    "Retries of outbound calls after a retryable error.",
    ["provider", "operation"],
)
