"""docker-compose.yml cannot be run here (no Docker engine): check it by reading it."""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from netlens.cli import main
from netlens.storage.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _services() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def _resolve(words: list[str]) -> click.Command | None:
    """The click command named by the leading words of a service's command, or None."""
    command: click.Command = main
    for word in words:
        if not isinstance(command, click.Group):
            break
        if word not in command.commands:
            return None
        command = command.commands[word]
    return command


def test_every_netlens_service_runs_an_existing_cli_command_with_known_options():
    services = {name: s for name, s in _services().items() if "build" in s}
    assert {"migrate", "web", "worker", "gpu-worker"} <= set(services)
    for name, service in services.items():
        words = [w for w in service["command"] if not w.startswith("-")]
        command = _resolve(words[:2])
        assert command is not None and not isinstance(command, click.Group), f"{name}: {words}"
        known = {opt for p in command.params for opt in getattr(p, "opts", [])}
        for word in service["command"]:
            if word.startswith("--"):
                assert word.split("=")[0] in known, f"{name}: unknown option {word}"


def test_every_netlens_variable_is_one_netlens_reads():
    known = {f"NETLENS_{name.upper()}" for name in Settings.model_fields}
    for name, service in _services().items():
        for var in service.get("environment", {}):
            if var.startswith("NETLENS_"):
                assert var in known, f"{name}: {var} is not read by NetLens"


def test_one_shared_environment_and_the_database_url_points_at_the_postgres_service():
    services = _services()
    envs = [services[n]["environment"] for n in ("migrate", "web", "worker", "gpu-worker")]
    assert all(env == envs[0] for env in envs)
    assert "@postgres:5432/" in envs[0]["NETLENS_DATABASE_URL"]
    assert envs[0]["NETLENS_BROKER_URL"].startswith("redis://redis:6379")


def test_healthchecks_ordering_volume_and_gpu_profile():
    services = _services()
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name in ("postgres", "redis", "web", "worker"):
        assert "healthcheck" in services[name], name
    assert "pgdata" in compose["volumes"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("web", "worker", "gpu-worker"):
        assert (
            services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        )
    gpu = services["gpu-worker"]
    assert gpu["profiles"] == ["gpu"] and "gpu" in gpu["command"][2]
    assert gpu["build"]["args"]["EXTRAS"] == "cuda"


def test_the_web_service_requires_login_and_its_healthcheck_is_the_public_health_route(tmp_path):
    from netlens.webapp.app import create_app

    web = _services()["web"]
    host = web["command"][web["command"].index("--host") + 1]
    assert host == "0.0.0.0" and web["environment"]["NETLENS_AUTH"] == "required"
    assert "/healthz" in " ".join(web["healthcheck"]["test"])
    app = create_app(Settings(home=tmp_path, auth="auto"), bind_host=host)
    assert app.server.config["NETLENS"].auth_required  # bound to all addresses: login
    assert {r.rule for r in app.server.url_map.iter_rules()} >= {"/healthz", "/login"}
