"""The threaded HTTP server and the ``ProviderSimulator`` facade."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import parse_qs, parse_qsl, urlsplit

from . import calcom_api, retell_api, stripe_api
from .calcom_api import CalcomApi
from .calls import RetellCalls
from .common import PROVIDERS, Context, SimRequest, SimResponse, fresh_state
from .control import handle_control
from .faults import Fault, FaultBook
from .forms import FormError, parse_form
from .retell_api import RetellApi
from .stripe_api import StripeApi
from .webhooks import Dispatcher

logger = logging.getLogger(__name__)

LOG_LIMIT = 20_000  # request-log entries kept (oldest dropped first)
TIMEOUT_HOLD_S = 30.0  # how long outage "timeout" holds a request
LOGGED_HEADERS = ("content-type", "cal-api-version", "idempotency-key", "user-agent")
FAULT_BODIES = {
    "stripe": stripe_api.fault_body,
    "calcom": calcom_api.fault_body,
    "retell": retell_api.fault_body,
}


class _Api(Protocol):
    def handle(self, req: SimRequest) -> SimResponse: ...


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sim: ProviderSimulator) -> None:
        self.sim = sim
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every answer carries Content-Length
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle waits for
    # the client's delayed ACK and every keep-alive answer takes ~40 ms.
    disable_nagle_algorithm = True
    server_version = "AskProProviderSimulator/1.0"
    timeout = 120  # idle keep-alive connections are closed after this
    server: _Server

    def _dispatch(self) -> None:
        self.server.sim._serve(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def write(self, resp: SimResponse) -> None:
        if resp.status in (204, 304):
            payload = b""
        elif resp.raw is not None:
            payload = resp.raw
        else:
            payload = json.dumps(resp.body).encode()
        self.send_response(resp.status)
        if payload:
            self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in resp.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


class ProviderSimulator:
    """Cal.com v2, Retell and Stripe on one local port, plus a ``/_sim/`` control API.

    ``with ProviderSimulator() as sim:`` serves on an ephemeral port in daemon threads.
    ``state`` is the in-memory world (dicts); hold ``lock`` when touching it.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, webhook_timeout: float = 5.0):
        self.host = host
        self.port = port
        self.lock = threading.RLock()
        self.state: dict[str, Any] = fresh_state()
        self._faults = FaultBook()
        self._dispatcher = Dispatcher(timeout_s=webhook_timeout)
        self._log: deque[dict[str, Any]] = deque(maxlen=LOG_LIMIT)
        self._log_lock = threading.Lock()
        self._seq = 0
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._ctx = Context(self.state, self.lock, self._dispatcher.emit)
        self._stripe = StripeApi(self._ctx)
        self._calcom = CalcomApi(self._ctx)
        self._retell = RetellApi(self._ctx)
        self.calls = RetellCalls(self._ctx)
        self._apis: dict[str, _Api] = {
            "stripe": self._stripe,
            "calcom": self._calcom,
            "retell": self._retell,
        }

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> ProviderSimulator:
        """Bind and serve in a daemon thread; returns self."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._ctx.url = self.url
        self._dispatcher.start()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"provider-simulator:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (held requests are released) and the webhook worker."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self._dispatcher.stop()

    def __enter__(self) -> ProviderSimulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def base(self, provider: str) -> str:
        """API base of one provider, e.g. ``http://127.0.0.1:8900/stripe``."""
        _check_provider(provider)
        return f"{self.url}/{provider}"

    # -- faults ----------------------------------------------------------------------
    def set_fault(self, provider: str, **fault: Any) -> None:
        """Replace the provider's fault (see ``faults.py``); raises ValueError if invalid."""
        _check_provider(provider)
        self._faults.set(provider, Fault.from_dict(fault))

    def clear_faults(self, provider: str | None = None) -> None:
        self._faults.clear(provider)

    def faults(self) -> dict[str, dict[str, Any]]:
        return self._faults.dump()

    # -- request log -----------------------------------------------------------------
    def requests(self, provider: str | None = None) -> list[dict[str, Any]]:
        """Copies of the request-log entries, oldest first."""
        with self._log_lock:
            return [dict(e) for e in self._log if provider is None or e["provider"] == provider]

    def clear_requests(self) -> None:
        with self._log_lock:
            self._log.clear()

    # -- state and webhooks ----------------------------------------------------------
    def reset(self) -> None:
        """Forget state (incl. webhook targets), faults, the request log and deliveries."""
        with self.lock:
            self.state.clear()
            self.state.update(fresh_state())
        self.clear_faults()
        self.clear_requests()
        self._dispatcher.clear()

    def add_webhook_target(self, provider: str, url: str, secret: str) -> dict[str, str]:
        """Deliver every webhook event of ``provider`` to ``url``, signed with ``secret``."""
        _check_provider(provider)
        target = {"provider": provider, "url": url, "secret": secret}
        with self.lock:
            self.state["targets"].append(target)
        return dict(target)

    @property
    def deliveries(self) -> list[dict[str, Any]]:
        """Webhook delivery attempts: url, provider, event_type, attempt, status, error."""
        return self._dispatcher.deliveries

    def wait_for_webhooks(self, timeout: float = 10.0) -> bool:
        """Block until every queued webhook has been attempted; False on timeout."""
        return self._dispatcher.drain(timeout)

    @contextlib.contextmanager
    def silenced(self, provider: str) -> Iterator[None]:
        """Drop (and record as ``silenced``) the provider's webhooks inside the block."""
        _check_provider(provider)
        self._dispatcher.silence(provider, True)
        try:
            yield
        finally:
            self._dispatcher.silence(provider, False)

    def pay_checkout_session(self, session_id: str) -> dict[str, Any]:
        """Pay an open Checkout Session; sends the Stripe events. Returns the session."""
        with self.lock:
            return self._stripe.pay_session(session_id)

    def calcom_cancel_silently(self, uid: str, reason: str | None = None) -> dict[str, Any]:
        """Cancel a Cal.com booking without a webhook (drift for reconciliation tests)."""
        with self.lock:
            booking: dict[str, Any] = dict(self._calcom.cancel(uid, reason, None, notify=False))
            return booking

    # -- serving ---------------------------------------------------------------------
    def _serve(self, handler: _Handler) -> None:
        arrived = time.time()
        split = urlsplit(handler.path)
        _, _, rest = split.path.partition("/")
        prefix, _, sub = rest.partition("/")
        try:
            raw = handler.read_body()
        except (ValueError, OSError):
            handler.close_connection = True
            handler.write(SimResponse(400, {"error": "unreadable body"}))
            return
        headers = {k.lower(): v for k, v in handler.headers.items()}
        req = SimRequest(
            method=handler.command,
            path="/" + sub,
            query=parse_qs(split.query, keep_blank_values=True),
            headers=headers,
            raw_body=raw,
            query_pairs=parse_qsl(split.query, keep_blank_values=True),
        )
        _parse_body(req)
        if prefix == "_sim":
            handler.write(handle_control(self, req))
            return
        if prefix not in PROVIDERS:
            handler.write(SimResponse(404, {"error": f"unknown path {split.path}"}))
            return
        entry = self._record(arrived, prefix, req)
        decision = self._faults.decide(prefix)
        entry["fault"] = decision.name
        if decision.latency_s:
            self._stopping.wait(decision.latency_s)
        if decision.action in ("reset", "timeout"):
            if decision.action == "timeout":
                self._stopping.wait(TIMEOUT_HOLD_S)
            handler.close_connection = True  # no answer at all: the client sees a disconnect
            return
        if decision.action == "status":
            resp = SimResponse(decision.status, FAULT_BODIES[prefix](decision.status))
            if decision.retry_after is not None:
                resp.headers["Retry-After"] = str(decision.retry_after)
        else:
            try:
                with self.lock:
                    resp = self._apis[prefix].handle(req)
            except Exception:
                logger.exception("simulator handler crashed on %s %s", req.method, split.path)
                resp = SimResponse(500, FAULT_BODIES[prefix](500))
        with self._log_lock:
            entry["status"] = resp.status
        try:
            handler.write(resp)
        except OSError:
            handler.close_connection = True

    def _record(self, arrived: float, provider: str, req: SimRequest) -> dict[str, Any]:
        entry = {
            "seq": 0,
            "at": arrived,
            "provider": provider,
            "method": req.method,
            "path": req.path,
            "query": {k: v[0] if len(v) == 1 else v for k, v in req.query.items()},
            "idempotency_key": req.headers.get("idempotency-key"),
            "headers": {h: req.headers[h] for h in LOGGED_HEADERS if h in req.headers},
            "body": req.body,
            "status": None,
            "fault": None,
        }
        with self._log_lock:
            self._seq += 1
            entry["seq"] = self._seq
            self._log.append(entry)
        return entry


def _check_provider(provider: str) -> None:
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}; expected one of {PROVIDERS}")


def _parse_body(req: SimRequest) -> None:
    """JSON or (bracket-notation) form bodies; failures set ``parse_error``."""
    if not req.raw_body:
        return
    content_type = req.headers.get("content-type", "")
    try:
        if "x-www-form-urlencoded" in content_type:
            req.body = parse_form(req.raw_body)
        else:
            req.body = json.loads(req.raw_body)
    except (ValueError, FormError, UnicodeDecodeError) as exc:
        req.parse_error = str(exc)
