"""``manage.py simulate_providers [--port P]``: serve the provider simulator in the foreground."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from integrations.simulator import ProviderSimulator


class Command(BaseCommand):
    help = "Serve local stand-ins for Cal.com, Retell and Stripe (and /_sim/) until stopped."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8900, help="port (default 8900)")
        parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        sim = ProviderSimulator(host=options["host"], port=options["port"]).start()
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            for provider in ("calcom", "retell", "stripe"):
                self.stdout.write(f"{provider.upper()}_API_BASE={sim.base(provider)}")
            self.stdout.write(f"control: {sim.url}/_sim/")
            self.stdout.write("Ctrl-C to stop.")
            self.stdout.flush()
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            sim.stop()
            self.stdout.write("simulator stopped")
