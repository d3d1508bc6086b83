"""The test profile: real PostgreSQL and Redis by default, fast hashing, eager tasks."""

from __future__ import annotations

import os

os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECRET_KEY", "askpro-test-secret-key-0123456789abcdefghijklmnop")
# The suite runs as the app's role (no BYPASSRLS, owns nothing); the owner migrates.
os.environ.setdefault("DATABASE_URL", "postgres://askpro_app@127.0.0.1:5432/askpro")
os.environ.setdefault("MIGRATION_DATABASE_URL", "postgres://askpro_owner@127.0.0.1:5432/askpro")
# tests/conftest.py moves each xdist worker to a Redis database of its own.
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("LOG_FORMAT", "console")
os.environ.setdefault("LOG_LEVEL", "warning")
os.environ.setdefault("CELERY_BROKER_URL", "memory://")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")  # the test client speaks plain HTTP

from askpro.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False

# Test-only tenant models covering FK, reverse FK and M2M-through paths.
INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]  # noqa: F405
