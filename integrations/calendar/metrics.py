"""Prometheus metrics of calendar subtraction and reconciliation (low-cardinality)."""

from __future__ import annotations

from prometheus_client import Counter

availability_cache = Counter(
    "askpro_availability_cache",
    "Cal.com busy-time lookups per staff member: hit (cached), miss (fetched), "
    "stale (Cal.com unavailable: last known or nothing served).",
    ["result"],
)
reconcile_actions = Counter(
    "askpro_calendar_reconcile",
    "Drift found by calendar reconciliation, by what was done about it.",
    ["action"],
)
