"""Log database queries slower than ``SLOW_QUERY_MS``, with the SQL but never its
parameters (they hold customers' data). The line carries the bound context: the view
and request id on the web, the task id in workers."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog
from django.conf import settings
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.dispatch import receiver

log = structlog.get_logger("askpro.slow_query")

SQL_CHARS = 1000


class SlowQueryLog:
    """A ``connection.execute_wrapper`` that times each query."""

    def __init__(self, alias: str) -> None:
        self.alias = alias

    def __call__(
        self,
        execute: Callable[..., Any],
        sql: str,
        params: Any,
        many: bool,
        context: dict[str, Any],
    ) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            if elapsed_ms >= settings.SLOW_QUERY_MS:
                log.warning(
                    "slow_query",
                    duration_ms=round(elapsed_ms, 1),
                    database=self.alias,
                    many=many,
                    sql=str(sql)[:SQL_CHARS],
                )


@receiver(connection_created)
def install(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """Once per connection wrapper (the signal fires again after every reconnect)."""
    if settings.SLOW_QUERY_MS <= 0:
        return
    if not any(isinstance(w, SlowQueryLog) for w in connection.execute_wrappers):
        connection.execute_wrappers.append(SlowQueryLog(connection.alias))
