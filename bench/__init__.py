"""`make bench`: gunicorn against PostgreSQL and Redis, driven by wrk (see README.md)."""
