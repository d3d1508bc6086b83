"""Re-encrypt every encrypted field under the newest key of FIELD_ENCRYPTION_KEYS."""

from __future__ import annotations

import json
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandParser
from django.db import models, transaction

from askpro.crypto import EncryptedTextField
from tenants.context import all_tenants


def encrypted_fields() -> list[tuple[type[models.Model], list[str]]]:
    found = []
    for model in apps.get_models():
        names = [
            f.attname for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)
        ]
        if names:
            found.append((model, names))
    return found


class Command(BaseCommand):
    help = (
        "Re-encrypt every secret (webhook secrets, provider keys) under the first key of "
        "FIELD_ENCRYPTION_KEYS. Put the new key in front, deploy, run this, then drop the "
        "old key. Idempotent; works in batches."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        counts: dict[str, int] = {}
        with all_tenants("rotate_keys: re-encrypt secrets under the newest key"):
            for model, names in encrypted_fields():
                counts[model._meta.label] = self._rotate(model, names)
        if options["json"]:
            self.stdout.write(json.dumps({"reencrypted": counts}))
            return
        for label, count in counts.items():
            self.stdout.write(f"{label}: {count} row(s) re-encrypted")

    def _rotate(self, model: type[models.Model], names: list[str]) -> int:
        """Decrypt each row (any key in the ring) and write it back (the first key)."""
        count = 0
        for pk in model._base_manager.values_list("pk", flat=True).iterator(chunk_size=500):
            with transaction.atomic():
                instance = model._base_manager.select_for_update().get(pk=pk)
                model._base_manager.filter(pk=pk).update(
                    **{name: getattr(instance, name) for name in names}
                )
            count += 1
        return count
