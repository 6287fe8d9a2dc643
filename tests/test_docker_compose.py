"""docker-compose.yml and the Dockerfile, checked without a Docker daemon.

The structure is read with PyYAML (a dependency of schemathesis, in the ``[test]`` extra):
the three default services, their commands (the README's), the `dask` profile's scheduler and
workers (issue #15), healthchecks for every service, the API
published on the host's 127.0.0.1 unless the user overrides it, and an image that runs as a
user other than root and installs from the lock file. ``docker compose config`` validates the
file as Compose itself reads it where the plugin is installed (skipped otherwise).
"""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from jobs.horse import STOP_CHECK_SECONDS, TERMINATE_GRACE_SECONDS
from jobs.settings import JobSettings

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _defaults(text: str) -> str:
    """``${VAR:-default}`` / ``${VAR-default}`` / ``${VAR}`` as Compose resolves them with VAR unset."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}", lambda m: m.group(1) or "", text)


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
        assert service["environment"]["REDIS_URL"].startswith("redis://redis:"), name
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
        assert "deploy" not in services[name], name
    assert "docker compose --profile gpu up --build --scale worker=0" in COMPOSE.read_text()


def _seconds(duration: str) -> float:
    """A Compose duration (``30s``, ``1m30s``, ``500ms``) in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"not a Compose duration: {duration!r}"
    return sum(float(n) * units[u] for n, u in parts)


def test_the_workers_stop_grace_period_covers_its_jobs_grace():
    """A busy worker given SIGTERM ends its job EOC_NTK_WORKER_STOP_GRACE seconds later (its guard
    looks every STOP_CHECK_SECONDS), SIGTERM then SIGKILL to the horse, hands the job back and exits:
    Docker's SIGKILL must come after all that (jobs.horse, docs/operations.md)."""
    for name in ("worker", "gpu-worker"):
        _check_stop_grace(_compose()["services"][name])
    assert _seconds("1m30s") == 90 and _seconds("500ms") == 0.5


def _check_stop_grace(worker: dict) -> None:
    needed = JobSettings().worker_stop_grace + STOP_CHECK_SECONDS + TERMINATE_GRACE_SECONDS + 2
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


def test_docker_compose_config_accepts_the_file():
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker is not installed: the YAML checks above stand in for `docker compose config`")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip("the docker compose plugin is not installed: the YAML checks above stand in for it")
    proc = subprocess.run([docker, "compose", "-f", str(COMPOSE), "config", "--quiet"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
