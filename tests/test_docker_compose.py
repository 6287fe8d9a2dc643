"""docker-compose.yml and the Dockerfile, checked without a Docker daemon.

The structure is read with PyYAML (a dependency of schemathesis, in the ``[test]`` extra):
the three default services, their commands (the README's), the `dask` profile's scheduler and
workers (issue #15), healthchecks for every service, the API
published on the host's 127.0.0.1 unless the user overrides it, and an image that runs as a
user other than root and installs from the lock file. ``docker compose config`` validates the
file as Compose itself reads it where the plugin (or the standalone ``docker-compose``) is installed
(skipped otherwise). The production settings: Redis's AOF on a volume and its password in every
``REDIS_URL``, CPU and memory limits on every service, base images pinned to exact versions.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from jobs.horse import STOP_GRACE_SECONDS, TERMINATE_GRACE_SECONDS
from jobs.settings import JobSettings

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PASSWORD = "EOC_NTK_REDIS_PASSWORD"
#: ``${EOC_NTK_REDIS_PASSWORD:?message}``: required, no default password.
REQUIRED_PASSWORD = re.compile(r"\$\{EOC_NTK_REDIS_PASSWORD:\?[^}]+\}")


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _defaults(text: str) -> str:
    """``${VAR:-default}`` / ``${VAR-default}`` / ``${VAR}`` as Compose resolves them with VAR unset
    (a required ``${VAR:?message}`` as empty: Compose itself refuses to start without it)."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*)|:?\?[^}]*)?\}", lambda m: m.group(1) or "", text)


def _readme_service_command() -> list[str]:
    """The Quick start's service command (first line of the block, after ``&&``, before ``#``)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    first = [line for line in block.splitlines() if line.strip()][0]
    return shlex.split(first.split("#", 1)[0].split("&&")[-1])


def _published(port: str | dict) -> tuple[str, str, str]:
    """(host ip, host port, container port) of one ``ports`` entry, defaults substituted."""
    if isinstance(port, dict):
        return _defaults(str(port.get("host_ip", ""))), str(port.get("published", "")), str(port["target"])
    parts = _defaults(str(port)).split(":")
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    return "", "", parts[0]


def test_services_and_their_commands_are_the_readmes():
    services = _compose()["services"]
    default = {name for name, service in services.items() if not service.get("profiles")}
    assert default == {"redis", "api", "worker"}, sorted(services)
    readme = _readme_service_command()
    assert readme == ["python", "-m", "service"], readme
    assert services["api"]["command"] == [*readme, "--host", "0.0.0.0"]  # inside the container
    assert services["worker"]["command"] == ["eoc-ntk", "worker"]
    assert "eoc-ntk worker" in (ROOT / "docs" / "operations.md").read_text()
    for name in ("api", "worker"):
        service = services[name]
        assert _defaults(service["environment"]["REDIS_URL"]) == "redis://:@redis:6379/0", name
        assert service["depends_on"]["redis"]["condition"] == "service_healthy", name
        assert service["image"] == services["api"]["image"] and "build" in service, name


def test_every_service_has_a_healthcheck_and_the_worker_checks_itself():
    services = _compose()["services"]
    for name, service in services.items():
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name}: no healthcheck"
    assert services["worker"]["healthcheck"]["test"] == ["CMD", "eoc-ntk", "worker", "--check"]
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])


def test_the_dask_profile_adds_a_scheduler_and_scalable_workers_that_the_api_and_workers_can_use():
    """Issue #15: `--profile dask` starts a scheduler and `dask-worker` (scalable: no fixed name or
    published port); the API and the RQ workers take EOC_NTK_DASK_ADDRESS from the environment."""
    services = _compose()["services"]
    scheduler, worker = services["dask-scheduler"], services["dask-worker"]
    assert scheduler["profiles"] == ["dask"] and worker["profiles"] == ["dask"]
    assert scheduler["command"][:2] == ["dask", "scheduler"] and "8786" in scheduler["command"]
    assert worker["command"][:3] == ["dask", "worker", "tcp://dask-scheduler:8786"]
    assert worker["command"][worker["command"].index("--nthreads") + 1] == "1"
    assert "--memory-limit" in worker["command"] and "--local-directory" in worker["command"]
    assert worker["depends_on"]["dask-scheduler"]["condition"] == "service_healthy"
    for name in ("dask-scheduler", "dask-worker"):
        assert services[name]["image"] == services["api"]["image"], name  # the workers import eoc_ntk
        assert "container_name" not in services[name] and not services[name].get("ports"), name
    for name in ("api", "worker"):
        env = services[name]["environment"]
        assert _defaults(env["EOC_NTK_DASK_ADDRESS"]) == "", name  # no cluster unless asked for
        assert "${EOC_NTK_DASK_ADDRESS" in env["EOC_NTK_DASK_ADDRESS"], name
    usage = COMPOSE.read_text() + (ROOT / "docs" / "operations.md").read_text()
    assert "EOC_NTK_DASK_ADDRESS=tcp://dask-scheduler:8786 docker compose --profile dask up" in usage
    assert "--scale dask-worker=" in usage


def test_the_gpu_profile_adds_a_worker_that_reserves_a_gpu_and_runs_spectra_on_it():
    """Issue #29: `--profile gpu` starts an RQ worker with torch (the image's TORCH build argument,
    pinned), a reserved NVIDIA GPU and EOC_NTK_DEVICE=cuda; the default services stay CPU-only."""
    services = _compose()["services"]
    gpu = services["gpu-worker"]
    assert gpu["profiles"] == ["gpu"] and gpu["command"] == ["eoc-ntk", "worker"]
    assert gpu["build"]["args"]["TORCH"] == "torch==2.13.0"
    assert gpu["image"] != services["worker"]["image"]  # its own image: torch is not in the default one
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}], devices
    assert _defaults(gpu["environment"]["EOC_NTK_DEVICE"]) == "cuda"
    assert gpu["environment"]["REDIS_URL"] == services["worker"]["environment"]["REDIS_URL"]
    assert gpu["healthcheck"]["test"] == ["CMD", "eoc-ntk", "worker", "--check"]
    assert gpu["depends_on"]["redis"]["condition"] == "service_healthy"
    assert not gpu.get("ports") and "container_name" not in gpu
    for name in ("api", "worker"):
        assert "EOC_NTK_DEVICE" not in services[name].get("environment", {}), name
        assert "reservations" not in services[name]["deploy"]["resources"], name  # limits only: no GPU
    assert "docker compose --profile gpu up --build --scale worker=0" in COMPOSE.read_text()


def _seconds(duration: str) -> float:
    """A Compose duration (``30s``, ``1m30s``, ``500ms``) in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"not a Compose duration: {duration!r}"
    return sum(float(n) * units[u] for n, u in parts)


def test_the_workers_stop_grace_period_covers_its_jobs_grace():
    """A busy worker given SIGTERM ends its job STOP_GRACE_SECONDS later, noticed within a beat
    interval (a third of the default heartbeat TTL), SIGTERM then SIGKILL to the horse, and exits:
    Docker's SIGKILL must come after all that (jobs.horse, docs/operations.md)."""
    for name in ("worker", "gpu-worker"):
        _check_stop_grace(_compose()["services"][name])
    assert _seconds("1m30s") == 90 and _seconds("500ms") == 0.5


def _check_stop_grace(worker: dict) -> None:
    needed = STOP_GRACE_SECONDS + JobSettings().job_heartbeat_ttl / 3 + TERMINATE_GRACE_SECONDS + 2
    assert _seconds(str(worker["stop_grace_period"])) >= needed, (worker.get("stop_grace_period"), needed)
    assert _seconds(str(worker["stop_grace_period"])) <= needed + 10, "Docker would wait for nothing"
    assert worker.get("init") is True, "an init process reaps the guards of ended horses"


def test_nothing_is_published_on_all_interfaces_by_default():
    services = _compose()["services"]
    published = {name: [_published(p) for p in s.get("ports", [])] for name, s in services.items()}
    assert published["redis"] == [] and published["worker"] == [], published
    assert published["api"] == [("127.0.0.1", "8000", "8000")], published
    raw = next(p for p in services["api"]["ports"])
    assert "EOC_NTK_BIND" in str(raw), "the bind address should be overridable (EOC_NTK_BIND) once keys are set"
    assert "EOC_NTK_API_KEYS" in services["api"]["environment"]


def test_the_default_check_catches_an_all_interfaces_publish():
    assert _published("8000:8000")[0] == ""  # Docker's default: every interface
    assert _published("${EOC_NTK_BIND:-0.0.0.0}:8000:8000")[0] == "0.0.0.0"
    assert _published({"target": 8000, "published": 8000, "host_ip": "127.0.0.1"}) == ("127.0.0.1", "8000", "8000")


def test_the_image_runs_unprivileged_from_the_lock_file():
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    users = [line.split(None, 1)[1] for line in lines if line.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0"), users
    installs = [line for line in lines if "pip install" in line]
    assert any("--require-hashes" in line and "requirements/lock.txt" in line for line in installs), installs
    # The one exception: torch for the `gpu` profile's image, behind a build argument that is empty
    # by default (the default image is the lock's alone).
    gated = [line for line in installs if '"$TORCH"' in line]
    assert gated == ['RUN if [ -n "$TORCH" ]; then pip install "$TORCH"; fi'], gated
    assert 'ARG TORCH=""' in lines
    installs = [line for line in installs if line not in gated]
    assert all("-r requirements/lock.txt" in line or "--no-deps" in line for line in installs), (
        f"every pip install takes the lock's versions or installs without dependencies: {installs}")
    assert (ROOT / "requirements" / "lock.txt").is_file()
    cmd = next(line for line in reversed(lines) if line.upper().startswith("CMD "))
    assert "service" in cmd and "0.0.0.0" in cmd


def _compose_command() -> list[str] | None:
    """``docker compose`` (the plugin), else the standalone ``docker-compose``, else None."""
    docker = shutil.which("docker")
    if docker is not None and subprocess.run([docker, "compose", "version"], capture_output=True,
                                             timeout=60).returncode == 0:
        return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    return [standalone] if standalone else None


def test_docker_compose_config_accepts_the_file():
    compose = _compose_command()
    if compose is None:
        pytest.skip("neither the docker compose plugin nor docker-compose is installed: the YAML checks above "
                    "stand in for `docker compose config`")
    env = {**os.environ, PASSWORD: "0123abcd"}
    proc = subprocess.run([*compose, "-f", str(COMPOSE), "config", "--quiet"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    env.pop(PASSWORD)
    proc = subprocess.run([*compose, "-f", str(COMPOSE), "config", "--quiet"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and PASSWORD in proc.stderr, "Redis must not start without its password"


def _options(command: list[str]) -> dict[str, str]:
    """``--flag value`` pairs of a command."""
    return {flag: value for flag, value in zip(command[1::2], command[2::2], strict=False) if flag.startswith("--")}


def test_redis_keeps_its_data_on_a_volume_behind_a_password_every_redis_url_carries():
    """AOF persistence (appendonly yes, fsync every second) in /data, a named volume; a required password
    (``requirepass``) that the healthcheck's redis-cli and every service's REDIS_URL use."""
    compose = _compose()
    services, redis = compose["services"], compose["services"]["redis"]
    assert redis["command"][0] == "redis-server"
    options = _options(redis["command"])
    assert options["--appendonly"] == "yes" and options["--appendfsync"] == "everysec", options
    assert options["--dir"] == "/data" and options["--maxmemory-policy"] == "noeviction", options
    assert REQUIRED_PASSWORD.fullmatch(options["--requirepass"]), options["--requirepass"]
    volume, target = redis["volumes"][0].split(":")[:2]
    assert target == "/data" and volume in (compose.get("volumes") or {}), redis["volumes"]
    assert redis["environment"]["REDISCLI_AUTH"] == options["--requirepass"]  # redis-cli ping authenticates
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    for ignore in (".dockerignore", ".gitignore"):  # the password's usual home, .env, goes in no image and no commit
        assert ".env" in (ROOT / ignore).read_text().split(), ignore
    users = {name for name, service in services.items() if "REDIS_URL" in (service.get("environment") or {})}
    assert users == {"api", "worker", "gpu-worker"}, users
    for name in users:
        url = services[name]["environment"]["REDIS_URL"]
        prefix, rest = url.split("://:", 1)
        password, address = rest.rsplit("@", 1)
        assert prefix == "redis" and REQUIRED_PASSWORD.fullmatch(password) and address == "redis:6379/0", (name, url)
        env = services[name]["environment"]  # the webhooks' settings: the API checks, the workers deliver
        assert env["EOC_NTK_WEBHOOK_SECRET"] == "${EOC_NTK_WEBHOOK_SECRET:-}", name
        assert env["EOC_NTK_WEBHOOK_ALLOW"] == "${EOC_NTK_WEBHOOK_ALLOW:-}", name


def _bytes(size: str) -> float:
    """A Compose byte size (``512m``, ``4g``, ``1.5G``) in bytes."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([kmg]?)b?", str(size).lower())
    assert m, f"not a Compose byte size: {size!r}"
    return float(m.group(1)) * 1024 ** " kmg".index(m.group(2) or " ")


def test_every_service_has_cpu_and_memory_limits():
    services = _compose()["services"]
    for name, service in services.items():
        limits = ((service.get("deploy") or {}).get("resources") or {}).get("limits") or {}
        assert float(limits.get("cpus", 0)) > 0, f"{name}: no CPU limit"
        assert _bytes(limits.get("memory", "0")) >= 256 * 1024 ** 2, f"{name}: no memory limit"
    redis = services["redis"]
    limit = _bytes(redis["deploy"]["resources"]["limits"]["memory"])
    assert _bytes(_options(redis["command"])["--maxmemory"]) <= limit / 2, \
        "a background rewrite forks Redis: leave it room under the container's limit"
    dask = services["dask-worker"]
    dask_memory = _defaults(dask["command"][dask["command"].index("--memory-limit") + 1]).replace("i", "")
    assert _bytes(dask["deploy"]["resources"]["limits"]["memory"]) > _bytes(dask_memory)
    assert _bytes("512m") == 512 * 1024 ** 2 and _bytes("4g") == 4 * 1024 ** 3


#: An exact version: major.minor.patch, an optional variant (``-alpine``, ``-slim-bookworm``), an optional digest.
EXACT = r"\d+\.\d+\.\d+(-[a-z0-9.-]+)?(@sha256:[0-9a-f]{64})?"


def test_base_images_are_pinned_to_exact_versions():
    for name, service in _compose()["services"].items():
        if "build" in service:
            continue  # built here, from the Dockerfile below
        assert re.fullmatch(r"[a-z0-9./_-]+:" + EXACT, service["image"]), f"{name}: floating tag {service['image']}"
    froms = [line.split()[1] for line in DOCKERFILE.read_text().splitlines() if line.upper().startswith("FROM ")]
    assert froms and all(re.fullmatch(r"python:3\.11\." + EXACT[len(r"\d+\.\d+\."):], f) for f in froms), froms
    assert all(f.endswith("-slim-bookworm") or "-slim-bookworm@" in f for f in froms), froms
    assert not any(re.fullmatch(r"[a-z]+:" + EXACT, floating) for floating in ("redis:7-alpine", "redis:latest"))
