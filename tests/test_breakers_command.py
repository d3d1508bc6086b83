"""`manage.py breakers`: status, forcing that persists, reset, JSON for scripts."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from integrations.breakers import get_breaker, reset_stores
from integrations.errors import ProviderUnavailable


@pytest.fixture(autouse=True)
def _fresh() -> Any:
    reset_stores()
    yield
    reset_stores()


def run(*args: str) -> dict[str, Any]:
    out = StringIO()
    call_command("breakers", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_status_lists_every_breaker_from_redis() -> None:
    status = run()
    assert status["store"] == "redis"
    assert [b["name"] for b in status["breakers"]] == ["calcom", "retell", "stripe"]
    assert {b["state"] for b in status["breakers"]} == {"closed"}


def test_open_forces_every_process_until_reset() -> None:
    assert run("open", "stripe")["breakers"][0]["state"] == "forced_open"
    reset_stores()  # another process: nothing but Redis in common
    with pytest.raises(ProviderUnavailable) as raised:
        get_breaker("stripe").acquire("refund")
    assert raised.value.retry_at is None
    get_breaker("calcom").acquire()  # the others are untouched
    assert run("reset", "stripe")["breakers"][0]["state"] == "closed"
    get_breaker("stripe").acquire()


def test_close_overrides_an_open_breaker() -> None:
    breaker = get_breaker("retell")
    for _ in range(breaker.policy.min_calls):
        breaker.acquire().record("failure")
    row = run("status", "retell")["breakers"][0]
    assert row["state"] == "open"
    assert row["next_probe_at"] is not None
    assert row["window"] == {"calls": 0, "failures": 0, "slow": 0}
    assert run("close", "retell")["breakers"][0]["state"] == "forced_closed"
    breaker.acquire()


def test_human_output_names_the_store_and_states() -> None:
    get_breaker("calcom").acquire().record("failure")
    out = StringIO()
    call_command("breakers", stdout=out)
    text = out.getvalue()
    assert "store: redis" in text
    assert "calcom   closed         window 1 calls, 1 failed, 0 slow" in text


def test_an_action_needs_a_name() -> None:
    with pytest.raises(CommandError, match="needs a breaker name"):
        call_command("breakers", "open")
