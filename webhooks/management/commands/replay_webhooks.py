"""Replay stored webhook events through their handlers (dead letters by default)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import QuerySet

from tenants.context import all_tenants
from webhooks.models import EventStatus, Provider, WebhookEvent
from webhooks.replay import replay_events


class Command(BaseCommand):
    help = "Replay webhook events: dead ones by default, or those picked by the filters."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--id", type=int, action="append", dest="ids", default=[])
        parser.add_argument("--provider", choices=Provider.values)
        parser.add_argument("--status", choices=[EventStatus.DEAD, EventStatus.FAILED])
        parser.add_argument("--since", help="ISO 8601: only events received since then")

    def handle(self, *args: Any, **options: Any) -> None:
        with all_tenants("operator: replay_webhooks"):
            events = list(self._select(options))
        outcomes = replay_events(events)
        processed = sum(1 for s in outcomes.values() if s == EventStatus.PROCESSED)
        for event_id, status in outcomes.items():
            self.stdout.write(f"event {event_id}: {status}")
        self.stdout.write(f"{len(outcomes)} replayed, {processed} processed")

    def _select(self, options: dict[str, Any]) -> QuerySet[WebhookEvent]:
        events = WebhookEvent.objects.order_by("received_at")
        if options["ids"]:
            events = events.filter(pk__in=options["ids"])
        else:
            events = events.filter(status=options["status"] or EventStatus.DEAD)
        if options["provider"]:
            events = events.filter(provider=options["provider"])
        if options["since"]:
            try:
                since = datetime.fromisoformat(options["since"])
            except ValueError:
                raise CommandError("--since takes an ISO 8601 datetime") from None
            if since.tzinfo is None:
                raise CommandError("--since needs a UTC offset")
            events = events.filter(received_at__gte=since)
        return events
