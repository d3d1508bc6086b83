"""``make chaos``: bounded fault drills against a private stack on loopback.

A private PostgreSQL cluster and Redis (never the shared ones on 5432/6379), the provider
simulator, gunicorn, two Celery workers and beat, under steady signed Stripe webhooks
and racing API bookings; four faults (Redis stop, a worker SIGKILLed, PostgreSQL
restarted, the providers down), a backup-and-restore drill and a soak. Each step checks
the invariants from the database. Entry point: ``python -m chaos.run`` (see
bench/README.md, "Chaos drills").
"""
