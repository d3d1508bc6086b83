"""``--scenario breaker``: what the circuit breaker adds to a provider call, in-process.

The runner starts ``python -m bench.breaker`` (Django set up, ``REDIS_URL`` = Redis db 4,
used by this scenario only; it deletes just the breaker keys it wrote) and reads its
figures, JSON on stdout. No gunicorn, no wrk:

1. closed: ``acquire()`` + ``record("success")``, one thread then ``THREADS``, against
   Redis (the Lua script: two round trips) and against the process-local store;
2. open (forced): ``acquire()`` raising ``ProviderUnavailable``, on both stores;
3. a cheap GET to the provider simulator (its own process, loopback): a plain
   ``httpx.Client``, ``Seam.send`` (breaker, metrics, logging) and ``Seam.send`` on the
   local store, in blocks taking turns; then ``Seam.send`` rejected, forced open.
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from bench.config import BenchError
from bench.server import run, simulator_process

if TYPE_CHECKING:
    from integrations.breakers import Breaker

REDIS_URL = "redis://127.0.0.1:6379/4"
NAME = "bench"  # the micro-benchmark's breaker: Redis key askpro:breaker:{bench}
PROVIDER = "calcom"  # the seam's breaker (get_breaker knows only the providers)
KEYS = [f"askpro:breaker:{{{name}}}{end}" for name in (NAME, PROVIDER) for end in ("", ":probe")]
CALLS = 20_000  # closed, one thread
SHORTER = 10_000  # closed with THREADS threads (for calls/s), and open
THREADS = 8
REQUESTS = 2_000  # per HTTP row
BLOCK = 100  # the GET rows take turns in blocks of this many requests
WARMUP = 1_000
TIMEOUT_S = 180
FALLBACKS = "askpro_breaker_local_fallback"  # the counter of operations Redis failed

Call = Callable[[], object]


# --- the runner's side ------------------------------------------------------------------


def measure(env: dict[str, str]) -> dict[str, Any]:
    """Run the benchmark in a subprocess on Redis db 4; its figures."""
    print("  breaker: in-process, about 20 s ...", file=sys.stderr, flush=True)
    out = run([sys.executable, "-m", "bench.breaker"], {**env, "REDIS_URL": REDIS_URL}, TIMEOUT_S)
    figures: dict[str, Any] = json.loads(out)
    return figures


def _cells(label: str, s: dict[str, Any]) -> list[str]:
    figures = (f"{s[key]:,.1f}" for key in ("p50_us", "p99_us", "mean_us"))
    return [label, f"{s['calls']:,}", *figures, f"{s['calls_per_s']:,}"]


def print_table(f: dict[str, Any]) -> None:
    """The breaker's rows, in the style of the main table, and the cost per call."""
    threads, seam = f"{f['threads']} threads", f["seam"]
    print(
        f"\nbreaker: in-process, {f['seconds']} s; state in Redis {f['redis_url']} or local; "
        "HTTP rows: a GET to the provider simulator (own process, loopback)"
    )
    lines = [["measurement", "calls", "p50 µs", "p99 µs", "mean µs", "calls/s"]]
    lines.append(_cells("redis PING (one round trip, for scale)", f["redis"]["ping"]))
    for store in ("redis", "local"):
        lines += [
            _cells(f"closed acquire+record, {store}", f[store]["closed"]),
            _cells(f"closed acquire+record, {store}, {threads}", f[store]["closed_threads"]),
            _cells(f"open acquire (rejected), {store}", f[store]["open"]),
        ]
    lines += [
        _cells("GET, plain httpx.Client", seam["plain"]),
        _cells("GET, Seam.send, breaker closed, redis", seam["closed"]),
        _cells("GET, Seam.send, breaker closed, local", seam["closed_local"]),
        _cells("Seam.send rejected (forced open), redis", seam["rejected"]),
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    for line in lines:
        pairs = enumerate(zip(line, widths, strict=True))
        cells = [
            cell.rjust(width) if column else cell.ljust(width) for column, (cell, width) in pairs
        ]
        print("  ".join(cells).rstrip())
    added, redis = seam["added"]["seam"], seam["added"]["redis"]
    print(
        f"  closed, added per call: the breaker alone {f['redis']['closed']['p50_us']:,.1f} µs "
        f"p50 on Redis, back to back ({f['local']['closed']['p50_us']:,.1f} local); a GET "
        f"through the seam {added['p50_us']:+,.1f} µs p50 ({added['mean_us']:+,.1f} mean) "
        f"over plain httpx, of which the breaker's Redis round trips {redis['p50_us']:+,.1f} "
        f"µs p50 ({redis['mean_us']:+,.1f} mean)"
    )
    print(
        f"  open: a rejection takes {f['redis']['open']['p50_us']:,.1f} µs p50 on Redis "
        f"({f['local']['open']['p50_us']:,.1f} local), {seam['rejected']['p50_us']:,.1f} µs "
        "through Seam.send; nothing is sent"
    )


# --- the subprocess: measuring ----------------------------------------------------------


def summary(samples: list[int], elapsed_ns: int) -> dict[str, Any]:
    """p50/p99 (nearest rank) and mean in µs; calls/s over the wall time."""
    ordered = sorted(samples)

    def rank(percent: float) -> float:
        return round(ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)] / 1000, 1)

    return {
        "calls": len(ordered),
        "p50_us": rank(50),
        "p99_us": rank(99),
        "mean_us": round(sum(ordered) / len(ordered) / 1000, 1),
        "calls_per_s": round(len(ordered) / elapsed_ns * 1e9),
    }


def timed(call: Call, count: int) -> tuple[list[int], int]:
    """Each call's ns, and the wall time of them all."""
    clock, samples = time.perf_counter_ns, []
    began = clock()
    for _ in range(count):
        start = clock()
        call()
        samples.append(clock() - start)
    return samples, clock() - began


def threaded(call: Call, count: int, threads: int) -> dict[str, Any]:
    """``count`` calls shared by ``threads`` threads starting together."""
    results: list[list[int]] = [[] for _ in range(threads)]
    barrier = threading.Barrier(threads + 1)

    def work(k: int) -> None:
        barrier.wait()
        results[k] = timed(call, count // threads)[0]

    workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for worker in workers:
        worker.start()
    barrier.wait()
    began = time.perf_counter_ns()
    for worker in workers:
        worker.join()
    return summary([ns for samples in results for ns in samples], time.perf_counter_ns() - began)


def rejected(call: Call) -> Call:
    """``call``, which must raise ProviderUnavailable."""
    from integrations.errors import ProviderUnavailable

    def attempt() -> None:
        try:
            call()
        except ProviderUnavailable:
            return
        raise BenchError("a call went through while the breaker was forced open")

    return attempt


def breaker_rows(breaker: Breaker) -> dict[str, Any]:
    """Closed (one thread, then THREADS) and forced open, on whichever store is in use."""
    closed: Call = lambda: breaker.acquire("bench").record("success")  # noqa: E731
    timed(closed, WARMUP)
    rows = {"closed": summary(*timed(closed, CALLS))}
    rows["closed_threads"] = threaded(closed, SHORTER, THREADS)
    breaker.force("open")
    try:
        reject = rejected(lambda: breaker.acquire("bench"))
        timed(reject, WARMUP)
        rows["open"] = summary(*timed(reject, SHORTER))
    finally:
        breaker.force("reset")
    return rows


def seam_rows(base: str) -> dict[str, Any]:
    """A GET through a plain client, through ``Seam.send`` and through ``Seam.send`` on the
    local store, in blocks of ``BLOCK`` taking turns (other load hits all alike); then
    ``Seam.send`` while the breaker is forced open."""
    import httpx
    from django.test import override_settings

    from integrations.breakers import get_breaker
    from integrations.deadline import Deadline
    from integrations.http import Seam

    url, headers = f"{base}/v2/event-types", {"Authorization": "Bearer cal_bench"}
    seam, plain = Seam(), httpx.Client(trust_env=False)

    def ok(response: httpx.Response) -> None:
        if response.status_code != 200:
            raise BenchError(f"the simulator answered {response.status_code}: {response.text}")

    def via_seam() -> None:
        request = httpx.Request("GET", url, headers=headers)
        ok(seam.send(PROVIDER, "list_event_types", request, deadline=Deadline.after(10)))

    def via_plain() -> None:
        ok(plain.send(httpx.Request("GET", url, headers=headers)))

    def on(name: str) -> AbstractContextManager[object]:
        return override_settings(REDIS_URL="") if name == "closed_local" else nullcontext()

    names = ["plain", "closed", "closed_local"]
    calls = {"plain": via_plain, "closed": via_seam, "closed_local": via_seam}
    samples: dict[str, tuple[list[int], int]] = {name: ([], 0) for name in names}
    try:
        for name in names:
            with on(name):
                timed(calls[name], WARMUP // 4)
        for block in range(REQUESTS // BLOCK):
            for name in names[block % 3 :] + names[: block % 3]:
                with on(name):
                    got, elapsed = timed(calls[name], BLOCK)
                samples[name] = (samples[name][0] + got, samples[name][1] + elapsed)
        rows = {name: summary(*samples[name]) for name in names}
        get_breaker(PROVIDER).force("open")
        try:
            reject = rejected(via_seam)
            timed(reject, WARMUP)
            rows["rejected"] = summary(*timed(reject, REQUESTS))
        finally:
            get_breaker(PROVIDER).force("reset")
    finally:
        seam.close()
        plain.close()

    def more(a: str, b: str) -> dict[str, float]:
        return {key: round(rows[a][key] - rows[b][key], 1) for key in ("p50_us", "mean_us")}

    # The seam over plain httpx; of that, the breaker's Redis round trips (Redis - local).
    added = {"seam": more("closed", "plain"), "redis": more("closed", "closed_local")}
    return {**rows, "added": added}


@contextmanager
def simulator() -> Iterator[str]:
    """The provider simulator in its own process: Cal.com's base."""
    with simulator_process("bench.breaker") as url:
        yield url


def serve() -> None:
    """``python -m bench.breaker simulator``: print Cal.com's base, serve until stdin ends."""
    from integrations.simulator import ProviderSimulator

    with ProviderSimulator() as sim:
        print(sim.base("calcom"), flush=True)
        sys.stdin.read()


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "askpro.settings")
    import django

    django.setup()
    import redis
    from django.conf import settings
    from django.test import override_settings
    from prometheus_client import REGISTRY

    from integrations.breakers import Breaker, BreakerPolicy

    if settings.REDIS_URL != REDIS_URL:
        raise BenchError(f"REDIS_URL is {settings.REDIS_URL!r}, not the bench's {REDIS_URL}")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    client.delete(*KEYS)  # a previous run's, had it been killed
    breaker = Breaker(NAME, BreakerPolicy.for_breaker(NAME))
    began = time.monotonic()
    try:
        timed(client.ping, WARMUP)  # a bare round trip, for scale: Redis latency varies
        ping = summary(*timed(client.ping, SHORTER // 2))
        figures: dict[str, Any] = {"redis": {"ping": ping, **breaker_rows(breaker)}}
        with simulator() as base:
            figures["seam"] = seam_rows(base)
        for name in (NAME, PROVIDER):  # a Redis error makes the store fall back silently
            if REGISTRY.get_sample_value(f"{FALLBACKS}_total", {"breaker": name}):
                raise BenchError(f"breaker {name} fell back to the local store: Redis failed")
        with override_settings(REDIS_URL=""):
            figures["local"] = breaker_rows(breaker)
    finally:
        client.delete(*KEYS)
    figures |= {"redis_url": REDIS_URL, "threads": THREADS, "block": BLOCK}
    figures["seconds"] = round(time.monotonic() - began, 1)
    json.dump(figures, sys.stdout)


if __name__ == "__main__":
    if sys.argv[1:] == ["simulator"]:
        serve()
    elif sys.argv[1:]:
        sys.exit("usage: python -m bench.breaker [simulator]")
    else:
        main()
