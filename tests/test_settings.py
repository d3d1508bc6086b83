"""Settings are strict: a malformed environment variable names itself at start-up."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.smoke

BASE_ENV = {"PATH": os.environ.get("PATH", ""), "DJANGO_SETTINGS_MODULE": "askpro.settings"}


def _start(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={**BASE_ENV, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_development_defaults_start() -> None:
    assert _start(DEBUG="true").returncode == 0


def test_production_without_a_secret_key_refuses_to_start() -> None:
    result = _start(DEBUG="false")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEBUG", "yes please"),
        ("DATABASE_URL", "nosuchdb://x"),
        ("MIGRATION_DATABASE_URL", "nosuchdb://x"),
        ("REDIS_URL", "http://localhost:6379"),
        ("CELERY_BROKER_URL", "ftp://broker"),
        ("API_THROTTLE_USER", "lots"),
        ("API_THROTTLE_COMPANY", "10/fortnight"),
        ("WEBHOOK_THROTTLE", "-5/min"),
        ("FIELD_ENCRYPTION_KEYS", "not-a-fernet-key"),
        ("LOG_LEVEL", "loud"),
        ("LOG_FORMAT", "xml"),
        ("OTEL_ENABLED", "maybe"),
        ("PUBLIC_BASE_URL", "example.com"),
        ("CALCOM_API_BASE", "ftp://cal"),
        ("DB_CONN_MAX_AGE", "forever"),
    ],
)
def test_a_malformed_variable_fails_start_up_naming_it(name: str, value: str) -> None:
    result = _start(**{"DEBUG": "true", name: value})
    assert result.returncode != 0
    assert f"Environment variable {name}" in result.stderr


def test_well_formed_values_are_accepted() -> None:
    from cryptography.fernet import Fernet

    result = _start(
        DEBUG="false",
        SECRET_KEY="x" * 50,
        FIELD_ENCRYPTION_KEYS=f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}",
        API_THROTTLE_USER="100/min",
        LOG_FORMAT="json",
        OTEL_ENABLED="false",
    )
    assert result.returncode == 0, result.stderr


def test_check_deploy_is_clean_under_production_settings() -> None:
    from cryptography.fernet import Fernet

    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env={
            **BASE_ENV,
            "DEBUG": "false",
            "SECRET_KEY": "k7#Qw9!zR2@vL5$xN8^mP3&bT6*hJ1(dF4)gS0-cY9+eU2=aW7_oI5|nE8~rK3",
            "ALLOWED_HOSTS": "askpro.example.com",
            "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "PUBLIC_BASE_URL": "https://askpro.example.com",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
