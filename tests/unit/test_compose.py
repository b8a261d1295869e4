"""docker-compose.yml cannot be run here (no Docker engine): check it by reading it."""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from netlens.cli import main
from storage.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _cli_has(words: list[str]) -> bool:
    group: click.Command = main
    for word in words:
        if not isinstance(group, click.Group) or word not in group.commands:
            return False
        group = group.commands[word]
    return True


def test_every_netlens_service_runs_an_existing_cli_command():
    services = _compose()["services"]
    built = {name: s for name, s in services.items() if "build" in s}
    assert "migrate" in built
    for name, service in built.items():
        command = [w for w in service["command"] if not w.startswith("-")]
        assert _cli_has(command[:2]) or _cli_has(command[:1]), f"{name}: {command}"


def test_every_netlens_variable_is_one_netlens_reads():
    known = {f"NETLENS_{name.upper()}" for name in Settings.model_fields}
    for name, service in _compose()["services"].items():
        for var in service.get("environment", {}):
            if var.startswith("NETLENS_"):
                assert var in known, f"{name}: {var} is not read by NetLens"


def test_services_have_healthchecks_and_the_database_a_named_volume():
    compose = _compose()
    for name in ("postgres", "redis"):
        assert "healthcheck" in compose["services"][name]
    assert "pgdata" in compose["volumes"]
    assert compose["services"]["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
