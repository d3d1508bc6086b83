"""The monitoring assets agree with the app: rules, dashboards, runbooks.

Prometheus rules (monitoring/prometheus/rules) and Grafana dashboards (monitoring/grafana)
may only query metrics the app exports, with histogram buckets it really has; every alert
carries a severity, a summary and a runbook that exists in docs/OPERATIONS.md. promtool
itself (syntax, unit tests of the alerts) runs in `make test-monitoring`.
No database is needed: files and the metric registry only.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY, Histogram
from prometheus_client.utils import floatToGoString

pytestmark = pytest.mark.smoke

ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = ROOT / "monitoring" / "prometheus" / "rules"
RULE_TESTS_DIR = ROOT / "monitoring" / "prometheus" / "tests"
DASHBOARDS_DIR = ROOT / "monitoring" / "grafana"
OPERATIONS = ROOT / "docs" / "OPERATIONS.md"
SCRAPE_MODULE = ROOT / "monitoring" / "scrape.py"
METRIC_MODULES = ("monitoring.metrics", "integrations.metrics", "integrations.calendar.metrics")

RUNBOOK_PREFIX = "https://github.com/askpro/askpro/blob/main/docs/OPERATIONS.md#"
DATASOURCE_UID = "prometheus"
SEVERITIES = {"page", "ticket"}
SLO_WINDOWS = ("5m", "30m", "1h", "6h", "3d")
# Series Prometheus makes itself (scrape health, alert state), not the app.
PROMETHEUS_SERIES = {"up", "ALERTS"}

_KEYWORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan",
}


# --- reading the assets -------------------------------------------------------------


@cache
def rule_groups() -> tuple[dict[str, Any], ...]:
    groups: list[dict[str, Any]] = []
    for path in sorted(RULES_DIR.glob("*.yml")):
        groups.extend(yaml.safe_load(path.read_text())["groups"])
    return tuple(groups)


def rules() -> Iterator[dict[str, Any]]:
    for group in rule_groups():
        yield from group["rules"]


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


def recorded_names() -> set[str]:
    return {rule["record"] for rule in rules() if "record" in rule}


@cache
def dashboards() -> tuple[tuple[str, dict[str, Any]], ...]:
    return tuple(
        (path.name, json.loads(path.read_text())) for path in sorted(DASHBOARDS_DIR.glob("*.json"))
    )


def panel_targets() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for name, dashboard in dashboards():
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                yield name, panel.get("title", ""), target


def all_exprs() -> list[tuple[str, str]]:
    """(where, PromQL) for every rule and every dashboard query."""
    found = [(rule.get("alert") or rule["record"], str(rule["expr"])) for rule in rules()]
    found += [(f"{name}: {title}", target["expr"]) for name, title, target in panel_targets()]
    return found


# --- what the app exports -----------------------------------------------------------


def scrape_gauge_names() -> set[str]:
    """Family names of the gauges monitoring.scrape builds at scrape time.

    Collecting them needs the database and Redis; their names are literals in the module,
    so they are read from its source (every ``GaugeMetricFamily("name", ...)``).
    """
    tree = ast.parse(SCRAPE_MODULE.read_text())
    names = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", getattr(node.func, "attr", None)) == "GaugeMetricFamily"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.add(str(node.args[0].value))
    return names


@cache
def exported_sample_names() -> frozenset[str]:
    """Every sample name the app can expose: per-process metrics plus scrape-time gauges."""
    from django_prometheus.middleware import Metrics

    for module in METRIC_MODULES:
        importlib.import_module(module)  # registers its metrics
    Metrics.get_instance()  # django-prometheus registers its metrics on first use
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "summary": ("", "_count", "_sum", "_created"),
        "gauge": ("",),
        "info": ("_info",),
    }
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return frozenset(names | scrape_gauge_names())


def histogram_buckets() -> dict[str, set[str]]:
    """Histogram name → its ``le`` label values, spelt as prometheus_client writes them."""
    exported_sample_names()  # imports the modules that register them
    found: dict[str, set[str]] = {}
    for collector in list(REGISTRY._collector_to_names):
        if isinstance(collector, Histogram):
            bounds = collector._upper_bounds
            found[collector._name] = {floatToGoString(bound) for bound in bounds}
    return found


# --- PromQL, roughly ----------------------------------------------------------------


def metric_names(expr: str) -> set[str]:
    """Metric (and recorded series) names an expression selects.

    Not a parser: drops strings, Grafana variables, label matchers, ranges and grouping
    clauses, then keeps the identifiers that are not functions or keywords.
    """
    text = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', expr)
    text = re.sub(r"\$\{[^}]*\}|\$\w+", "", text)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])[A-Za-z_:][\w:]*", text):
        name = match.group()
        if name.lower() in _KEYWORDS or re.match(r"\s*\(", text[match.end() :]):
            continue
        names.add(name)
    return names


def bucket_selectors(expr: str) -> Iterator[tuple[str, str]]:
    """(histogram name, le value) for every ``<name>_bucket{..., le="..."}``."""
    for match in re.finditer(r"([A-Za-z_:][\w:]*)_bucket\{([^}]*)\}", expr):
        le = re.search(r'\ble\s*=\s*"([^"]*)"', match.group(2))
        if le:
            yield match.group(1), le.group(1)


def test_metric_names_reads_promql() -> None:
    expr = (
        'sum by (view, le) (rate(django_http_requests_total{view=~"$view", status=~"5.."}'
        "[$__rate_interval])) / on() group_left (x) (askpro:slo:error_ratio_rate5m > 1e-3)"
        ' or vector(0) and absent(up{job="a"}) offset 5m'
    )
    assert metric_names(expr) == {
        "django_http_requests_total",
        "askpro:slo:error_ratio_rate5m",
        "up",
    }


# --- rules --------------------------------------------------------------------------


def test_rule_files_exist() -> None:
    assert list(RULES_DIR.glob("*.yml")), RULES_DIR
    assert list(RULE_TESTS_DIR.glob("*.yml")), RULE_TESTS_DIR
    assert alerts()
    assert recorded_names()


def test_every_queried_metric_is_exported() -> None:
    exported = exported_sample_names()
    recorded = recorded_names()
    unknown = []
    for where, expr in all_exprs():
        for name in metric_names(expr):
            if ":" in name:
                if name not in recorded:
                    unknown.append(f"{where}: {name} (no recording rule)")
            elif name not in exported and name not in PROMETHEUS_SERIES:
                unknown.append(f"{where}: {name}")
    assert not unknown, "queries name metrics the app doesn't export:\n" + "\n".join(unknown)


def test_exported_names_include_the_documented_ones() -> None:
    # A guard on the guard: an empty or wrong registry would let anything through.
    exported = exported_sample_names()
    for name in (
        "django_http_responses_total_by_status_view_method_total",
        "django_http_requests_latency_seconds_by_view_method_bucket",
        "askpro_webhook_events_total",
        "askpro_webhook_lag_seconds_bucket",
        "askpro_tool_call_seconds_count",
        "askpro_breaker_transitions_total",
        "askpro_external_request_seconds_bucket",
        "askpro_availability_cache_total",
        "askpro_webhook_backlog",
        "askpro_webhook_oldest_unprocessed_seconds",
        "askpro_breaker_state",
        "askpro_celery_queue_length",
        "askpro_celery_workers_seen",
        "askpro_scrape_source_up",
    ):
        assert name in exported, name
    assert "askpro_webhook_events" not in exported  # a counter is only seen as _total


def test_histogram_thresholds_are_real_buckets() -> None:
    """``le="1"`` never matches: prometheus_client writes ``le="1.0"``."""
    buckets = histogram_buckets()
    wrong = []
    for where, expr in all_exprs():
        for histogram, le in bucket_selectors(expr):
            if le not in buckets.get(histogram, set()):
                known = sorted(buckets.get(histogram, set()), key=float)
                wrong.append(f'{where}: {histogram} has no le="{le}" (buckets: {known})')
    assert not wrong, "\n".join(wrong)


def operations_anchors() -> set[str]:
    anchors = set()
    fenced = False
    for line in OPERATIONS.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (heading := re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)):
            anchors.add(github_anchor(heading.group(1)))
    return anchors


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_operations_links_resolve() -> None:
    """Links between sections of docs/OPERATIONS.md (and into it from SLO.md) land."""
    anchors = operations_anchors()
    links = re.findall(r"\]\(#([^)]+)\)", OPERATIONS.read_text())
    slo = (ROOT / "monitoring" / "SLO.md").read_text()
    links += re.findall(r"\]\([./]*docs/OPERATIONS\.md#([^)]+)\)", slo)
    assert links
    assert sorted(set(links) - anchors) == []


def test_github_anchor() -> None:
    assert github_anchor("WebhookAcceptanceBudgetBurn") == "webhookacceptancebudgetburn"
    assert github_anchor("Backup and restore") == "backup-and-restore"
    assert github_anchor("`/health`: the rules") == "health-the-rules"


@pytest.mark.parametrize("alert", alerts(), ids=lambda a: f"{a['alert']}-{a['labels']['severity']}")
def test_alert_has_severity_summary_and_runbook(alert: dict[str, Any]) -> None:
    assert alert.get("labels", {}).get("severity") in SEVERITIES
    annotations = alert.get("annotations", {})
    assert annotations.get("summary", "").strip()
    assert annotations.get("description", "").strip()
    runbook = annotations.get("runbook_url", "")
    assert runbook.startswith(RUNBOOK_PREFIX), runbook
    anchor = runbook.removeprefix(RUNBOOK_PREFIX)
    assert anchor == alert["alert"].lower(), "the runbook heading is the alert's name"
    assert anchor in operations_anchors(), f"no heading for #{anchor} in docs/OPERATIONS.md"


def slo_names() -> list[str]:
    return sorted({name.split(":")[1] for name in recorded_names() if name.endswith(":objective")})


def test_every_slo_has_its_windows_and_both_severities() -> None:
    assert len(slo_names()) >= 4, slo_names()
    recorded = recorded_names()
    for slo in slo_names():
        for window in SLO_WINDOWS:
            assert f"askpro:{slo}:error_ratio_rate{window}" in recorded
            assert f"askpro:{slo}:total_rate{window}" in recorded
        assert f"askpro:{slo}:error_budget_remaining" in recorded
        severities = {
            alert["labels"]["severity"] for alert in alerts() if alert["labels"].get("slo") == slo
        }
        assert severities == SEVERITIES, (slo, severities)


def test_every_alert_is_unit_tested() -> None:
    """Each alert name is expected to fire in some promtool test (not only to stay quiet)."""
    fired: set[str] = set()
    for path in RULE_TESTS_DIR.glob("*.yml"):
        for test in yaml.safe_load(path.read_text())["tests"]:
            for check in test.get("alert_rule_test", []):
                if check.get("exp_alerts"):
                    fired.add(check["alertname"])
    missing = {alert["alert"] for alert in alerts()} - fired
    assert not missing, f"alerts no promtool test expects to fire: {sorted(missing)}"


# --- dashboards ---------------------------------------------------------------------


def test_dashboards_exist_with_unique_uids() -> None:
    assert len(dashboards()) >= 5
    uids = [dashboard.get("uid") for _, dashboard in dashboards()]
    assert all(uids), uids
    assert len(set(uids)) == len(uids), uids


@pytest.mark.parametrize("name", [name for name, _ in dashboards()])
def test_dashboard_is_complete(name: str) -> None:
    dashboard = dict(dashboards())[name]
    assert dashboard["title"].strip()
    assert dashboard["panels"]
    for panel in dashboard["panels"]:
        where = f"{name}: {panel.get('title')!r}"
        assert panel.get("title", "").strip(), where
        assert panel.get("datasource", {}).get("uid") == DATASOURCE_UID, where
        assert panel.get("targets"), f"{where} has no targets"
        for target in panel["targets"]:
            assert target.get("expr", "").strip(), f"{where} has a target without expr"
            assert target.get("datasource", {}).get("uid") == DATASOURCE_UID, where
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(set(ids)) == len(ids), f"{name}: duplicate panel ids"
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            assert variable["datasource"]["uid"] == DATASOURCE_UID, variable["name"]
