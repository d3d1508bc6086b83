"""The breaker's state machine, proved the same for the Redis store and the local fallback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis
from django.conf import settings
from django.test import override_settings
from prometheus_client import REGISTRY

from integrations.breakers import BreakerPolicy, get_breaker, reset_stores
from integrations.breakers.core import Breaker, store_kind
from integrations.breakers.local_store import LocalBreakerStore
from integrations.breakers.redis_store import RedisBreakerStore
from integrations.breakers.store import BreakerStore
from integrations.errors import ProviderUnavailable

POLICY = BreakerPolicy(
    bucket_seconds=1.0,
    buckets=10,
    min_calls=4,
    failure_rate=0.5,
    slow_call_seconds=0.05,
    slow_rate=0.75,
    open_seconds=0.3,
    half_open_successes=2,
    probe_lease_seconds=0.3,
)


@pytest.fixture(params=["redis", "local"])
def store(request: pytest.FixtureRequest) -> Iterator[BreakerStore]:
    if request.param == "local":
        yield LocalBreakerStore()
        return
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield RedisBreakerStore(client)
    client.close()


def fail(store: BreakerStore, times: int, name: str = "calcom") -> list[str]:
    """Admit and fail `times` calls; return the transitions seen."""
    seen = []
    for _ in range(times):
        admission = store.acquire(name, "t", POLICY)
        assert admission.decision == "allow"
        recorded = store.record(name, "failure", "", POLICY)
        if recorded.transitioned_from:
            seen.append(f"{recorded.transitioned_from}->{recorded.state}")
    return seen


def wait_open_period() -> None:
    time.sleep(POLICY.open_seconds + 0.05)


def test_closed_breaker_admits_and_counts_calls(store: BreakerStore) -> None:
    assert store.acquire("calcom", "t", POLICY).decision == "allow"
    store.record("calcom", "success", "", POLICY)
    store.record("calcom", "failure", "", POLICY)
    snap = store.snapshot("calcom", POLICY)
    assert (snap.state, snap.calls, snap.failures) == ("closed", 2, 1)


def test_failures_below_the_minimum_call_count_do_not_open(store: BreakerStore) -> None:
    assert fail(store, POLICY.min_calls - 1) == []
    assert store.acquire("calcom", "t", POLICY).decision == "allow"


def test_failure_rate_at_the_threshold_opens_once(store: BreakerStore) -> None:
    for _ in range(2):
        store.record("calcom", "success", "", POLICY)
    assert fail(store, 2) == ["closed->open"]
    admission = store.acquire("calcom", "t", POLICY)
    assert admission.decision == "reject"
    assert admission.state == "open"
    now_ms = time.time() * 1000
    assert now_ms < admission.retry_at_ms <= now_ms + POLICY.open_ms + 50


def test_failure_rate_below_the_threshold_keeps_it_closed(store: BreakerStore) -> None:
    for _ in range(7):
        store.record("calcom", "success", "", POLICY)
    store.record("calcom", "failure", "", POLICY)
    store.record("calcom", "failure", "", POLICY)
    snap = store.snapshot("calcom", POLICY)
    assert (snap.state, snap.calls, snap.failures) == ("closed", 9, 2)


def test_slow_calls_open_it_at_the_slow_rate(store: BreakerStore) -> None:
    store.record("calcom", "success", "", POLICY)
    for _ in range(2):
        assert store.record("calcom", "slow", "", POLICY).state == "closed"
    assert store.record("calcom", "slow", "", POLICY).state == "open"


def test_old_failures_slide_out_of_the_window(store: BreakerStore) -> None:
    short = BreakerPolicy(bucket_seconds=0.1, buckets=3, min_calls=4, open_seconds=1)
    for _ in range(3):
        store.record("calcom", "failure", "", short)
    time.sleep(0.35)
    recorded = store.record("calcom", "failure", "", short)
    assert (recorded.state, recorded.calls) == ("closed", 1)


def test_breakers_are_independent(store: BreakerStore) -> None:
    fail(store, 4, "calcom")
    assert store.acquire("calcom", "t", POLICY).decision == "reject"
    assert store.acquire("stripe", "t", POLICY).decision == "allow"


def test_half_open_admits_one_probe_and_closes_after_enough_successes(
    store: BreakerStore,
) -> None:
    fail(store, 4)
    wait_open_period()
    first = store.acquire("calcom", "probe-1", POLICY)
    assert (first.decision, first.transitioned_from) == ("probe", "open")
    other = store.acquire("calcom", "other", POLICY)
    assert (other.decision, other.state) == ("reject", "half_open")
    assert other.retry_at_ms > time.time() * 1000
    assert store.record("calcom", "success", "probe-1", POLICY).state == "half_open"
    assert store.acquire("calcom", "probe-2", POLICY).decision == "probe"
    closed = store.record("calcom", "success", "probe-2", POLICY)
    assert (closed.state, closed.transitioned_from) == ("closed", "half_open")
    assert store.acquire("calcom", "t", POLICY).decision == "allow"
    assert store.snapshot("calcom", POLICY).calls == 0  # a fresh window after closing


def test_a_failed_probe_opens_it_again(store: BreakerStore) -> None:
    fail(store, 4)
    wait_open_period()
    assert store.acquire("calcom", "probe", POLICY).decision == "probe"
    recorded = store.record("calcom", "failure", "probe", POLICY)
    assert (recorded.state, recorded.transitioned_from) == ("open", "half_open")
    assert store.acquire("calcom", "t", POLICY).decision == "reject"


def test_a_lost_probe_lease_expires_and_its_late_result_is_ignored(store: BreakerStore) -> None:
    fail(store, 4)
    wait_open_period()
    assert store.acquire("calcom", "lost", POLICY).decision == "probe"
    time.sleep(POLICY.probe_lease_seconds + 0.05)
    assert store.acquire("calcom", "next", POLICY).decision == "probe"
    assert store.record("calcom", "failure", "lost", POLICY).transitioned_from == ""
    assert store.snapshot("calcom", POLICY).state == "half_open"


def test_results_of_calls_admitted_before_opening_change_nothing(store: BreakerStore) -> None:
    fail(store, 4)
    for _ in range(5):
        assert store.record("calcom", "success", "", POLICY).transitioned_from == ""
    assert store.acquire("calcom", "t", POLICY).decision == "reject"


def test_forced_modes_win_and_reset_returns_to_automatic(store: BreakerStore) -> None:
    assert store.force("calcom", "open") == ("forced_open", "closed")
    admission = store.acquire("calcom", "t", POLICY)
    assert (admission.decision, admission.retry_at_ms) == ("reject", 0)
    assert store.force("calcom", "closed") == ("forced_closed", "forced_open")
    fail(store, 6)
    assert store.acquire("calcom", "t", POLICY).decision == "allow"
    assert store.force("calcom", "reset")[0] == "closed"
    snap = store.snapshot("calcom", POLICY)
    assert (snap.state, snap.forced) == ("closed", "")


def test_redis_state_survives_a_new_client() -> None:
    """A restarted process (a new connection, no local memory) sees the same breaker."""
    first = RedisBreakerStore(redis.Redis.from_url(settings.REDIS_URL))
    fail(first, 4)
    first.force("stripe", "open")
    second = RedisBreakerStore(redis.Redis.from_url(settings.REDIS_URL))
    assert second.snapshot("calcom", POLICY).state == "open"
    assert second.snapshot("stripe", POLICY).forced == "open"


# --- the Breaker callers use -----------------------------------------------------------


@pytest.fixture
def breaker() -> Iterator[Breaker]:
    reset_stores()
    yield Breaker("calcom", POLICY)
    reset_stores()


def test_open_breaker_raises_provider_unavailable_with_the_next_probe_time(
    breaker: Breaker,
) -> None:
    for _ in range(4):
        breaker.acquire("op").record("failure")
    before = REGISTRY.get_sample_value("askpro_breaker_rejections_total", {"breaker": "calcom"})
    with pytest.raises(ProviderUnavailable) as raised:
        breaker.acquire("create_booking")
    error = raised.value
    assert (error.provider, error.operation, error.retryable) == ("calcom", "create_booking", False)
    assert error.retry_at is not None
    assert datetime.now(UTC) < error.retry_at
    after = REGISTRY.get_sample_value("askpro_breaker_rejections_total", {"breaker": "calcom"})
    assert after == (before or 0) + 1
    assert breaker.snapshot().effective == "open"


def test_transitions_are_counted_and_logged(
    breaker: Breaker, caplog: pytest.LogCaptureFixture
) -> None:
    labels = {"breaker": "calcom", "from_state": "closed", "to_state": "open"}
    before = REGISTRY.get_sample_value("askpro_breaker_transitions_total", labels) or 0
    with caplog.at_level("INFO"):
        for _ in range(4):
            breaker.acquire().record("failure")
    assert REGISTRY.get_sample_value("askpro_breaker_transitions_total", labels) == before + 1
    assert [r for r in caplog.records if "breaker.transition" in r.getMessage()]


def test_a_permit_classifies_slow_calls(breaker: Breaker) -> None:
    permit = breaker.acquire()
    assert permit.outcome_for(failed=False, seconds=0.01) == "success"
    assert permit.outcome_for(failed=False, seconds=POLICY.slow_call_seconds) == "slow"
    assert permit.outcome_for(failed=True, seconds=0.01) == "failure"


def test_unknown_breaker_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown breaker"):
        get_breaker("paypal")


def test_policy_overrides_come_from_settings() -> None:
    with override_settings(BREAKERS={"default": {"min_calls": 7}, "stripe": {"open_seconds": 9}}):
        assert get_breaker("stripe").policy.open_seconds == 9
        assert get_breaker("stripe").policy.min_calls == 7
        assert get_breaker("calcom").policy.open_seconds == BreakerPolicy().open_seconds


def test_unreachable_redis_falls_back_to_a_process_local_breaker(
    breaker: Breaker, caplog: pytest.LogCaptureFixture
) -> None:
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"), caplog.at_level("WARNING"):
        for _ in range(4):
            breaker.acquire().record("failure")
        with pytest.raises(ProviderUnavailable):
            breaker.acquire()
        assert store_kind().startswith("local: Redis unreachable")
    assert [r for r in caplog.records if "breaker.redis_unreachable" in r.getMessage()]
    # The shared breaker in Redis never saw those failures.
    reset_stores()
    assert breaker.acquire().probe is False


def test_without_redis_url_breakers_are_process_local(breaker: Breaker) -> None:
    with override_settings(REDIS_URL=None):
        assert store_kind() == "local: REDIS_URL not set"
        breaker.force("open")
        with pytest.raises(ProviderUnavailable):
            breaker.acquire()
    reset_stores()
    breaker.acquire()  # Redis never heard of the forced state
