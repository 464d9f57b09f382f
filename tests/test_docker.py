"""docker-compose.yml, the Dockerfile and .env.example, checked without a Docker engine.

No Docker runs in CI, so these read the files: every command a container runs must parse with
the `polytag` CLI, every POLYTAG_* variable must be a real setting, dependencies, healthchecks,
the GPU reservation and the volumes must be declared, and the image must be built in the right
order. tests/test_production.py runs the same commands against PostgreSQL and Redis.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import re
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
import yaml

from app import cli
from app.config import EXAMPLE_SECRET, ConfigurationError, Settings
from tests.fixtures.deployment import COMPOSE, COMPOSE_TEXT, REPO, SERVICES, compose_command

APP_SERVICES = sorted(name for name, s in SERVICES.items() if s.get("build") == ".")
ENV_EXAMPLE = (REPO / ".env.example").read_text()
SETTING_VARIABLES = {f"POLYTAG_{name.upper()}" for name in Settings.model_fields}
DATA_DIR = "/data"


def polytag_args(service: str) -> Any:
    """The service's `polytag ...` command parsed by the real CLI parser."""
    command = compose_command(service)
    assert command[0] == "polytag", f"{service} does not run polytag: {command}"
    return cli.build_parser().parse_args(command[1:])


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs of the Dockerfile, continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in (REPO / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        pending += line[:-1] + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            keyword, _, arguments = pending.partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
            pending = ""
    return instructions


def healthcheck_test(service: str) -> str:
    """The healthcheck command of a service as one string ("" when it has none)."""
    check = SERVICES[service].get("healthcheck") or {}
    if check.get("disable"):
        return ""
    test = check.get("test", "")
    return " ".join(test[1:]) if isinstance(test, list) else str(test)


def test_the_production_services_are_all_there() -> None:
    assert {"db", "redis", "migrate", "api", "worker-gpu", "worker"} <= set(SERVICES)
    assert {"migrate", "api", "worker-gpu", "worker"} <= set(APP_SERVICES)
    assert all(SERVICES[name]["image"] == "polytag:latest" for name in APP_SERVICES)
    assert SERVICES["db"]["image"].startswith("postgres:")
    assert SERVICES["redis"]["image"].startswith("redis:")


@pytest.mark.parametrize("service", APP_SERVICES)
def test_every_command_a_container_runs_exists(service: str) -> None:
    command = compose_command(service)
    if command[0] == "polytag":
        args = polytag_args(service)
        assert callable(args.func)
    else:  # the storage init script, run by the image's python
        assert command[0] == "python"
        script = REPO / command[1]
        assert script.is_file(), f"{service} runs a missing script {command[1]}"
        compile(script.read_text(), str(script), "exec")


def test_each_service_runs_the_right_command() -> None:
    migrate = polytag_args("migrate")
    assert migrate.func is cli.cmd_migrate
    api = polytag_args("api")
    assert api.func is cli.cmd_serve
    assert api.worker is False  # workers are their own services
    assert (api.host, api.port) == ("0.0.0.0", 8000)
    gpu = polytag_args("worker-gpu")
    assert gpu.func is cli.cmd_worker
    assert (gpu.queues, gpu.concurrency) == ("train", 1)
    cpu = polytag_args("worker")
    assert cpu.func is cli.cmd_worker
    assert cpu.queues == "default"


def test_api_port_is_published_and_exposed() -> None:
    assert any(str(port).endswith(":8000") for port in SERVICES["api"]["ports"])
    assert ("EXPOSE", "8000") in dockerfile_instructions()


@pytest.mark.parametrize("service", ["api", "worker", "worker-gpu"])
def test_app_services_wait_for_healthy_servers_and_migrations(service: str) -> None:
    depends = SERVICES[service]["depends_on"]
    assert depends["db"]["condition"] == "service_healthy"
    assert depends["redis"]["condition"] == "service_healthy"
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    # The storage profiles are optional: the dependency must not be required.
    assert depends["storage-init"] == {
        "condition": "service_completed_successfully",
        "required": False,
    }


def test_migrate_is_a_one_shot_after_the_database() -> None:
    migrate = SERVICES["migrate"]
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"
    assert migrate["restart"] == "no"
    assert migrate["healthcheck"] == {"disable": True}


@pytest.mark.parametrize("service", ["db", "redis", "api", "worker", "worker-gpu"])
def test_long_running_services_have_healthchecks(service: str) -> None:
    test = healthcheck_test(service)
    assert test, f"{service} has no healthcheck"
    assert SERVICES[service]["healthcheck"]["interval"]


def test_the_api_healthcheck_asks_the_app() -> None:
    test = healthcheck_test("api")
    assert re.search(r"http://127\.0\.0\.1:8000/(healthz|readyz)", test)
    assert test.startswith("python")  # no curl in python:3.11-slim


@pytest.mark.parametrize("service", ["worker", "worker-gpu"])
def test_worker_healthchecks_ping_their_own_worker(service: str) -> None:
    name = polytag_args(service).name
    assert f"inspect ping --destination {name}@$$HOSTNAME" in healthcheck_test(service)


def test_the_gpu_worker_reserves_a_gpu() -> None:
    devices = SERVICES["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    assert "deploy" not in SERVICES["worker"]


def test_the_gpu_worker_has_time_to_stop_gracefully() -> None:
    grace = SERVICES["worker-gpu"]["stop_grace_period"]
    minutes = re.fullmatch(r"(\d+)m", grace)
    assert minutes and int(minutes.group(1)) >= 5, grace


def _named_volume(mounts: list[str], target: str) -> str | None:
    for mount in mounts:
        source, _, rest = mount.partition(":")
        if rest.split(":")[0] == target and source in COMPOSE["volumes"]:
            return source
    return None


def test_volumes_hold_the_database_queue_and_files() -> None:
    assert _named_volume(SERVICES["db"]["volumes"], "/var/lib/postgresql/data")
    assert _named_volume(SERVICES["redis"]["volumes"], "/data")
    data_volumes = {_named_volume(SERVICES[name]["volumes"], DATA_DIR) for name in APP_SERVICES}
    assert len(data_volumes) == 1 and None not in data_volumes, "one shared data volume"
    for name in APP_SERVICES:
        assert SERVICES[name]["environment"]["POLYTAG_DATA_DIR"] == DATA_DIR


def test_app_services_run_in_production_against_postgres_and_redis() -> None:
    for name in APP_SERVICES:
        environment = SERVICES[name]["environment"]
        assert environment["POLYTAG_ENV"] == "production"
        assert "postgresql+psycopg://" in environment["POLYTAG_DATABASE_URL"]
        assert "@db:5432/" in environment["POLYTAG_DATABASE_URL"]
        assert "redis://redis:6379/" in environment["POLYTAG_BROKER_URL"]
        assert SERVICES[name]["env_file"] == ".env"


def test_every_polytag_variable_in_compose_is_a_setting() -> None:
    used = set(re.findall(r"\bPOLYTAG_[A-Z0-9_]+", COMPOSE_TEXT))
    assert used, "compose passes no settings"
    assert used <= SETTING_VARIABLES, f"not settings: {sorted(used - SETTING_VARIABLES)}"


def test_storage_profiles_are_wired_through_settings() -> None:
    minio, azurite = SERVICES["minio"], SERVICES["azurite"]
    assert minio["profiles"] == ["minio"] and azurite["profiles"] == ["azurite"]
    assert "${POLYTAG_S3_ACCESS_KEY_ID" in minio["environment"]["MINIO_ROOT_USER"]
    assert "${POLYTAG_S3_SECRET_ACCESS_KEY" in minio["environment"]["MINIO_ROOT_PASSWORD"]
    init = SERVICES["storage-init"]
    assert sorted(init["profiles"]) == ["azurite", "minio"]
    assert init["depends_on"]["minio"]["required"] is False
    assert init["depends_on"]["azurite"]["required"] is False
    for line in ("POLYTAG_S3_ENDPOINT_URL=http://minio:9000", "BlobEndpoint=http://azurite:10000"):
        assert line in ENV_EXAMPLE


def _example_variables() -> dict[str, str]:
    """POLYTAG_* names in .env.example, set or commented out, with their example values."""
    found: dict[str, str] = {}
    for line in ENV_EXAMPLE.splitlines():
        match = re.fullmatch(r"#?\s*(POLYTAG_[A-Z0-9_]+)=(.*)", line.strip())
        if match:
            found.setdefault(match.group(1), match.group(2))
    return found


def test_env_example_lists_every_setting_and_nothing_else() -> None:
    listed = set(_example_variables())
    assert SETTING_VARIABLES - listed == set(), "settings missing from .env.example"
    assert listed - SETTING_VARIABLES == set(), ".env.example names unknown settings"


def test_env_example_explains_each_setting() -> None:
    lines = ENV_EXAMPLE.splitlines()
    for index, line in enumerate(lines):
        if re.fullmatch(r"#?\s*POLYTAG_[A-Z0-9_]+=.*", line.strip()):
            block = lines[:index]
            while block and re.fullmatch(r"#?\s*POLYTAG_[A-Z0-9_]+=.*", block[-1].strip()):
                block.pop()  # settings described together share the comment above them
            assert block and block[-1].startswith("# ") and len(block[-1]) > 8, line


def test_env_example_has_no_usable_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    active = {
        key: value
        for key, _, value in (
            line.partition("=") for line in ENV_EXAMPLE.splitlines() if "=" in line
        )
        if not key.startswith("#")
    }
    assert active["POSTGRES_PASSWORD"] == ""
    assert active["POLYTAG_SECRET_KEY"] == EXAMPLE_SECRET
    monkeypatch.delenv("POLYTAG_SECRET_KEY", raising=False)  # the environment beats the file
    example = Settings(
        _env_file=REPO / ".env.example",
        env="production",
        database_url="postgresql+psycopg://polytag:pw@db:5432/polytag",
        broker_url="redis://redis:6379/0",
    )
    with pytest.raises(ConfigurationError, match="POLYTAG_SECRET_KEY"):
        example.check_production()


def test_dockerfile_builds_a_small_non_root_image() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    users = [arguments for keyword, arguments in instructions if keyword == "USER"]
    assert users and users[-1] not in ("root", "0")
    keywords = [keyword for keyword, _ in instructions]
    assert keywords.index("USER") < keywords.index("CMD")


def test_dockerfile_installs_dependencies_before_copying_code() -> None:
    instructions = dockerfile_instructions()
    copies = [(i, args) for i, (keyword, args) in enumerate(instructions) if keyword == "COPY"]
    installs = [
        i for i, (keyword, args) in enumerate(instructions)
        if keyword == "RUN" and "pip install -r" in args
    ]
    assert installs, "no dependency install step"
    before = [args for i, args in copies if i < installs[0]]
    assert before == ["pyproject.toml ./"], "only pyproject.toml may come before the deps"
    code = [i for i, args in copies if args.split()[0] in ("app", "worker")]
    assert code and min(code) > installs[0]
    # The dependency list is pyproject's own, with PyPI's default (CUDA) torch wheels.
    assert "tomllib" in instructions[installs[0]][1]
    assert ("ARG", 'TORCH_INDEX_URL=""') in instructions


def test_dockerfile_copies_what_the_app_reads_at_run_time() -> None:
    ignored = [
        line.strip().rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "!"))
    ]
    copied: list[str] = []
    for keyword, arguments in dockerfile_instructions():
        if keyword == "COPY" and not arguments.startswith("--from"):
            copied += arguments.split()[:-1]
    for source in copied:
        assert (REPO / source).exists(), f"COPY {source}: no such file"
        assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), source
    for needed in ("app", "worker", "migrations", "templates", "static", "alembic.ini"):
        assert needed in copied
    assert ".env" in ignored  # secrets never enter the build context


def test_dockerfile_healthcheck_and_command() -> None:
    instructions = dict(dockerfile_instructions())
    assert "/healthz" in instructions["HEALTHCHECK"] and "python" in instructions["HEALTHCHECK"]
    command = yaml.safe_load(instructions["CMD"])  # the JSON exec form
    assert command == ["polytag", "serve", "--no-worker", "--host", "0.0.0.0"]
    args = cli.build_parser().parse_args(command[1:])
    assert args.func is cli.cmd_serve and args.worker is False


def _init_storage() -> ModuleType:
    # Loaded by path: a top-level `docker` package (the Docker SDK) may be installed.
    spec = importlib.util.spec_from_file_location("init_storage", REPO / "docker/init_storage.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_storage_init_creates_the_s3_bucket_once(s3_server: str) -> None:
    from tests.fixtures.cloud import (
        S3_ACCESS_KEY_ID,
        S3_REGION,
        S3_SECRET_ACCESS_KEY,
        s3_client,
        unique_name,
    )

    bucket = unique_name("init")
    config = SimpleNamespace(
        storage_backend="s3",
        s3_bucket=bucket,
        s3_region=S3_REGION,
        s3_endpoint_url=s3_server,
        s3_access_key_id=S3_ACCESS_KEY_ID,
        s3_secret_access_key=S3_SECRET_ACCESS_KEY,
    )
    ensure_storage = _init_storage().ensure_storage
    assert ensure_storage(config) == f"created s3 bucket {bucket!r}"
    assert ensure_storage(config) == f"s3 bucket {bucket!r} already exists"
    names = [b["Name"] for b in s3_client(s3_server).list_buckets()["Buckets"]]
    assert bucket in names
    s3_client(s3_server).delete_bucket(Bucket=bucket)


def test_storage_init_creates_the_azure_container_once(azurite_server: str) -> None:
    from azure.storage.blob import BlobServiceClient

    from tests.fixtures.cloud import unique_name

    container = unique_name("init")
    config = SimpleNamespace(
        storage_backend="azure",
        azure_container=container,
        azure_connection_string=azurite_server,
        azure_account_url="",
        azure_account_key="",
        azure_sas_token="",
    )
    ensure_storage = _init_storage().ensure_storage
    assert ensure_storage(config) == f"created azure container {container!r}"
    assert ensure_storage(config) == f"azure container {container!r} already exists"
    service = BlobServiceClient.from_connection_string(azurite_server)
    assert service.get_container_client(container).exists()
    service.delete_container(container)


def test_storage_init_leaves_local_storage_alone() -> None:
    config = SimpleNamespace(storage_backend="local")
    assert _init_storage().ensure_storage(config) == "storage backend 'local' needs no bucket"
