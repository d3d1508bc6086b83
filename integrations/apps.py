from __future__ import annotations

from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from integrations.provisioning.tasks import queue_for_new_branch
        from tenants.models import Branch

        # Also registers the provisioning task with Celery (autodiscovery finds only
        # `<app>.tasks`).
        post_save.connect(queue_for_new_branch, sender=Branch, dispatch_uid="auto_provision")

        # Calendar: appointment changes invalidate cached Cal.com busy times; the import
        # of `tasks` registers the reconciliation tasks.
        from integrations.calendar import signals as calendar_signals
        from integrations.calendar import tasks as calendar_tasks  # noqa: F401

        calendar_signals.connect()
