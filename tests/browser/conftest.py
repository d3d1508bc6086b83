"""A real browser against the live stack: Debian's Chromium driven by Playwright.

The app runs as it does in production -- gunicorn, ``askpro.settings``, ``DEBUG=false``,
sessions in Redis, the app's database role -- over the test database (so tests here need
``transaction=True``). gunicorn serves no static files (a proxy does, in production), so
the browser's ``/static/`` requests are answered by the test from Django's staticfiles
finders, as that proxy would: the admin gets its CSS and, more to the point, its
JavaScript (the customer field is a select2 autocomplete, an empty ``<select>`` without).
"""

from __future__ import annotations

import mimetypes
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.db import connection, connections
from playwright.sync_api import Browser, BrowserContext, Page, Route, sync_playwright

from tests.live import harness
from tests.live.harness import ROOT, LiveStack, PrivateRedis

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts" / "browser"

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="live stack: PostgreSQL")

private_redis = harness.private_redis  # the live tests' fixture


@dataclass
class StartingStack:
    """A LiveStack whose gunicorn is starting in the background."""

    stack: LiveStack
    starting: Future[None]

    def ready(self) -> LiveStack:
        self.starting.result()  # re-raises a failed start (TimeoutError naming the log)
        return self.stack


@pytest.fixture
def live(transactional_db: None, private_redis: PrivateRedis) -> Iterator[StartingStack]:
    """gunicorn over the test database, answering by the time ``context`` is handed out.

    It starts at once, in the background: importing the app takes gunicorn seconds (many
    more on a busy machine), which the other fixtures and the browser's launch use. No
    Celery worker: nothing in the admin's flows waits for one (the replay action runs in
    the request; a booking's calendar and deposit jobs wait in the outbox).
    """
    stack = LiveStack(redis_url=private_redis.url)
    with ThreadPoolExecutor(max_workers=1) as pool:
        starting = pool.submit(stack.start_web)
        try:
            yield StartingStack(stack, starting)
        finally:
            starting.exception()  # wait for it: never leave a half-started server behind
            stack.stop()


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    with sync_playwright() as playwright:
        # Playwright's sync API keeps an event loop in this thread; Django then refuses
        # ORM calls as "async unsafe", although nothing here is asynchronous. Allowed for
        # as long as Playwright runs, and no longer (the rest of the session stays checked).
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield browser
        finally:
            browser.close()
            # While a loop runs in this thread, asgiref keeps Django's connections apart
            # from the thread's own: close those now, or one outlives the test database.
            connections.close_all()
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def _serve_static(route: Route) -> None:
    """Answer ``/static/<path>`` from the app's static files, as a proxy would."""
    relative = route.request.url.split("/static/", 1)[1].split("?", 1)[0]
    found = finders.find(relative)
    if not isinstance(found, str):
        route.fulfill(status=404, body="not found")
        return
    content_type = mimetypes.guess_type(found)[0] or "application/octet-stream"
    route.fulfill(status=200, path=found, content_type=content_type)


@pytest.fixture
def context(browser: Browser, live: StartingStack) -> Iterator[BrowserContext]:
    context = browser.new_context(
        base_url=live.ready().base_url,
        viewport={"width": 1440, "height": 900},
        timezone_id="Europe/Berlin",  # where the salon's staff sit (tests.conftest.Salon)
    )
    context.set_default_timeout(10_000)
    context.route("**/static/**", _serve_static)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where the screenshots go (gitignored): emptied once per run."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS
