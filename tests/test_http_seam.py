"""The outbound seam, with the outside world replaced at its transport."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.urls import reverse
from prometheus_client import REGISTRY

from integrations.breakers import BreakerPolicy, get_breaker, reset_stores
from integrations.deadline import Deadline
from integrations.errors import CredentialsRejected, IntegrationError, ProviderUnavailable
from integrations.http import Seam, redact_path, retry_after_seconds, use_transport
from integrations.models import Integration, IntegrationStatus
from tenants.context import tenant_context
from tests.conftest import World, login
from tests.factories import CompanyFactory

URL = "https://api.cal.com/v2/bookings"
SLACK = 0.15  # scheduling noise on a loaded 2-core machine


@dataclass
class Provider:
    """A scripted provider: answers in order, the last one repeats; records each request."""

    answers: list[Callable[[httpx.Request], httpx.Response]]
    seen: list[tuple[float, httpx.Request]] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((time.monotonic(), request))
        answer = self.answers[min(len(self.seen), len(self.answers)) - 1]
        return answer(request)

    @property
    def calls(self) -> int:
        return len(self.seen)

    def gaps(self) -> list[float]:
        times = [t for t, _ in self.seen]
        return [b - a for a, b in itertools.pairwise(times)]


def status(code: int, headers: dict[str, str] | None = None, body: Any = None) -> Any:
    return lambda request: httpx.Response(code, headers=headers, json=body or {"ok": code < 300})


def raise_(exc: Exception) -> Any:
    def answer(request: httpx.Request) -> httpx.Response:
        raise exc

    return answer


@pytest.fixture(autouse=True)
def _fresh_breakers(settings: Any) -> Iterator[None]:
    settings.BREAKERS = {"default": {"min_calls": 50}}
    reset_stores()
    yield
    reset_stores()


@pytest.fixture
def provider() -> Callable[..., tuple[Provider, Seam]]:
    opened: list[Any] = []

    def make(*answers: Any) -> tuple[Provider, Seam]:
        p = Provider(list(answers))
        cm = use_transport(httpx.MockTransport(p))
        opened.append(cm)
        return p, cm.__enter__()

    yield make
    for cm in opened:
        cm.__exit__(None, None, None)


def call(seam: Seam, *, deadline: float = 5.0, **kwargs: Any) -> httpx.Response:
    return seam.request(
        "calcom",
        "create_booking",
        "POST",
        URL,
        json={"start": "2026-12-01T09:00:00Z"},
        deadline=Deadline.after(deadline),
        **kwargs,
    )


def test_a_success_is_returned_with_timeouts_always_set(provider: Any) -> None:
    p, seam = provider(status(201, body={"data": {"uid": "abc"}}))
    response = call(seam, deadline=4.0)
    assert response.json() == {"data": {"uid": "abc"}}
    timeout = p.seen[0][1].extensions["timeout"]
    assert 0 < timeout["connect"] <= 3.0
    assert 0 < timeout["read"] <= 4.0


def test_timeouts_are_capped_by_the_callers_deadline(provider: Any) -> None:
    p, seam = provider(status(200))
    call(seam, deadline=0.5)
    timeout = p.seen[0][1].extensions["timeout"]
    assert timeout["read"] <= 0.5
    assert timeout["connect"] <= 0.5


def test_server_errors_are_retried_with_growing_backoff(provider: Any) -> None:
    p, seam = provider(status(503))
    with pytest.raises(IntegrationError) as raised:
        call(seam, attempts=3)
    assert (raised.value.kind, raised.value.status, raised.value.retryable) == (
        "server_error",
        503,
        True,
    )
    assert p.calls == 3
    first, second = p.gaps()
    # initial 0.2 s + up to 0.2 s jitter, then doubled; upper bounds allow a busy machine
    assert 0.2 <= first < 0.4 + SLACK
    assert 0.4 <= second < 0.6 + SLACK


def test_a_retry_that_succeeds_returns_the_success(provider: Any) -> None:
    p, seam = provider(status(500), raise_(httpx.ConnectError("refused")), status(200))
    assert call(seam, attempts=3).status_code == 200
    assert p.calls == 3


@pytest.mark.parametrize("code", [400, 404, 409, 422])
def test_a_client_error_is_never_retried(provider: Any, code: int) -> None:
    p, seam = provider(status(code))
    with pytest.raises(IntegrationError) as raised:
        call(seam, attempts=5)
    assert (raised.value.kind, raised.value.permanent, raised.value.status) == (
        "rejected",
        True,
        code,
    )
    assert p.calls == 1


def test_redirects_are_not_followed(provider: Any) -> None:
    p, seam = provider(status(302, headers={"Location": "https://evil.example/"}))
    with pytest.raises(IntegrationError) as raised:
        call(seam)
    assert (raised.value.kind, raised.value.permanent) == ("redirect", True)
    assert p.calls == 1


def test_retry_after_is_honoured(provider: Any) -> None:
    p, seam = provider(status(429, headers={"Retry-After": "1"}), status(200))
    assert call(seam).status_code == 200
    assert p.gaps()[0] >= 1.0


def test_retries_stop_at_the_deadline(provider: Any) -> None:
    p, seam = provider(status(429, headers={"Retry-After": "30"}))
    started = time.monotonic()
    with pytest.raises(IntegrationError) as raised:
        call(seam, deadline=2.0, attempts=10)
    assert raised.value.kind == "rate_limited"
    assert raised.value.retry_after == 30
    assert p.calls == 1
    assert time.monotonic() - started < 1.0


def test_backoff_never_sleeps_past_the_deadline(provider: Any) -> None:
    p, seam = provider(status(500))
    started = time.monotonic()
    with pytest.raises(IntegrationError):
        call(seam, deadline=0.9, attempts=10)
    assert time.monotonic() - started < 0.9 + SLACK
    assert 2 <= p.calls <= 3


@pytest.mark.parametrize(
    ("exc", "kind"),
    [(httpx.ConnectError("refused"), "connect"), (httpx.ReadTimeout("slow"), "timeout")],
)
def test_transport_failures_are_retryable_breaker_failures(
    provider: Any, exc: Exception, kind: str
) -> None:
    p, seam = provider(raise_(exc))
    with pytest.raises(IntegrationError) as raised:
        call(seam, attempts=2)
    assert (raised.value.kind, raised.value.retryable) == (kind, True)
    assert p.calls == 2
    snapshot = get_breaker("calcom").snapshot()
    assert (snapshot.calls, snapshot.failures) == (2, 2)


def test_an_open_breaker_rejects_without_sending(provider: Any) -> None:
    p, seam = provider(status(200))
    get_breaker("calcom").force("open")
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable):
        call(seam, attempts=5)
    assert time.monotonic() - started < 0.05
    assert p.calls == 0


def test_server_errors_open_the_breaker_and_later_calls_never_leave(
    provider: Any, settings: Any
) -> None:
    settings.BREAKERS = {"default": {"min_calls": 4, "open_seconds": 60}}
    p, seam = provider(status(500))
    for _ in range(2):
        with pytest.raises(IntegrationError):
            call(seam, attempts=2)
    assert p.calls == 4
    with pytest.raises(ProviderUnavailable):
        call(seam)
    assert p.calls == 4


def test_slow_calls_are_counted(provider: Any, settings: Any) -> None:
    settings.BREAKERS = {"default": {"slow_call_seconds": 0.05, "min_calls": 50}}

    def slow(request: httpx.Request) -> httpx.Response:
        time.sleep(0.06)
        return httpx.Response(200)

    provider(slow)[1].request("calcom", "x", "GET", URL, deadline=Deadline.after(2))
    assert get_breaker("calcom").snapshot().slow == 1


@pytest.mark.django_db
def test_rejected_credentials_mark_the_companys_integration_not_the_breaker(
    provider: Any,
) -> None:
    company_a, company_b = CompanyFactory(), CompanyFactory()
    p, seam = provider(
        status(401, body={"error": {"message": "Invalid API key"}}), status(200), status(200)
    )
    with tenant_context(company_a):
        with pytest.raises(CredentialsRejected) as raised:
            call(seam, attempts=3)
        assert raised.value.status == 401
        assert p.calls == 1
        row = Integration.objects.get(provider="calcom")
        assert row.status == IntegrationStatus.BROKEN
        assert row.last_error == "HTTP 401: Invalid API key"
        assert row.last_error_at is not None
    with tenant_context(company_b):
        assert not Integration.objects.exists()
        call(seam)
    snapshot = get_breaker("calcom").snapshot()
    assert (snapshot.failures, snapshot.state) == (0, "closed")
    with tenant_context(company_a):
        call(seam)
        row.refresh_from_db()
        assert row.status == IntegrationStatus.OK
        assert row.last_ok_at is not None


def test_each_attempt_is_logged_without_secrets_and_measured(
    provider: Any, caplog: pytest.LogCaptureFixture
) -> None:
    _, seam = provider(status(200))
    labels = {"provider": "calcom", "operation": "create_booking", "outcome": "ok"}
    before = REGISTRY.get_sample_value("askpro_external_request_seconds_count", labels) or 0
    with caplog.at_level("INFO"):
        call(seam, headers={"Authorization": "Bearer cal_live_secret"}, params={"phone": "+49151"})
    lines = [r.getMessage() for r in caplog.records if "integration.request" in r.getMessage()]
    assert len(lines) == 1
    assert "cal_live_secret" not in lines[0]
    assert "+49151" not in lines[0]
    assert "/v2/bookings" in lines[0]
    after = REGISTRY.get_sample_value("askpro_external_request_seconds_count", labels)
    assert after == before + 1


def test_phone_numbers_in_paths_are_shortened() -> None:
    assert redact_path("/update-phone-number/+4930123456789") == "/update-phone-number/+4930****89"
    assert redact_path("/get-agent/agent_1234") == "/get-agent/agent_1234"


@pytest.mark.parametrize(
    ("value", "expected"), [("7", 7.0), (None, None), ("soon", None), ("", None)]
)
def test_retry_after_values(value: str | None, expected: float | None) -> None:
    assert retry_after_seconds(value) == expected


def test_retry_after_as_an_http_date() -> None:
    from email.utils import formatdate

    seconds = retry_after_seconds(formatdate(time.time() + 30, usegmt=True))
    assert seconds is not None
    assert 28 <= seconds <= 31


def test_a_passed_deadline_sends_nothing(provider: Any) -> None:
    p, seam = provider(status(200))
    with pytest.raises(IntegrationError) as raised:
        seam.send("calcom", "x", httpx.Request("GET", URL), deadline=Deadline.after(0))
    assert raised.value.kind == "deadline"
    assert p.calls == 0


def test_policy_fixture_is_applied() -> None:
    assert get_breaker("calcom").policy == BreakerPolicy(min_calls=50)


@pytest.mark.django_db
def test_a_broken_integration_is_shown_to_its_company_in_the_admin(world: World) -> None:
    with tenant_context(world.a):
        Integration.objects.filter(provider="calcom").update(last_error="HTTP 401: key revoked")
    page = login(world.owner_a).get(reverse("admin:integrations_integration_changelist"))
    assert page.status_code == 200
    assert "HTTP 401: key revoked" in page.content.decode()
    other = login(world.outsider).get(reverse("admin:integrations_integration_changelist"))
    assert "key revoked" not in other.content.decode()


SEAM_FILES = {"integrations/http.py", "integrations/sdk.py"}
HTTP_CLIENTS = re.compile(
    r"^\s*(import|from)\s+(httpx|requests|urllib3|aiohttp|http\.client|urllib\.request|pycurl)\b",
    re.MULTILINE,
)
# An SDK client built anywhere but integrations/sdk.py would bring its own HTTP and retries.
SDK_CLIENTS = re.compile(
    r"stripe\.StripeClient\(|(?<!\w)Retell\(|stripe\.api_key\s*="
    r"|stripe\.[A-Z]\w+\.(create|retrieve|list|modify)\("
)


def test_nothing_else_in_the_app_talks_http() -> None:
    """Only the seam imports an HTTP client (the simulator is the outside world)."""
    root = Path(__file__).resolve().parent.parent
    offenders = []
    for package in ("askpro", "tenants", "bookings", "webhooks", "integrations", "monitoring"):
        for path in (root / package).rglob("*.py"):
            relative = path.relative_to(root).as_posix()
            if relative in SEAM_FILES or relative.startswith("integrations/simulator/"):
                continue
            source = path.read_text()
            if HTTP_CLIENTS.search(source) or SDK_CLIENTS.search(source):
                offenders.append(relative)
    assert offenders == []
