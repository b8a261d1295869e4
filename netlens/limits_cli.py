"""`netlens limits show|set`: the per-user limits of a team server, from its own machine."""

from __future__ import annotations

import click

from netlens.storage.settings import Settings


def _db_and_user(settings: Settings, user: str | None):
    from netlens.cli import _fail, _open_db
    from netlens.storage.users import get_user_by_name

    db = _open_db(settings)
    if user is None:
        return db, None
    info = get_user_by_name(db, user)
    if info is None:
        _fail(f"--user: no user named {user!r}")
    return db, info


@click.group()
def limits() -> None:
    """Per-user limits (jobs, sweep size, uploads, job time) of a team server. The CLI on the
    server itself acts as the operator and is not limited; neither are admins."""


@limits.command("show")
@click.argument("user", required=False)
@click.pass_obj
def limits_show(settings: Settings, user: str | None) -> None:
    """The team's values (and their defaults), or USER's effective limits and usage."""
    from netlens.storage import limits as store
    from netlens.webapp.views.limits import show, usage_lines

    db, info = _db_and_user(settings, user)
    if info is None:
        defaults, team = store.defaults(settings), store.team_limits(db, settings)
        for name, limit in store.LIMITS.items():
            changed = (
                "" if team[name] == defaults[name] else f"  (default {show(name, defaults[name])})"
            )
            click.echo(f"{name:<24} {show(name, team[name]):<10} {limit.label}{changed}")
        for who, values in store.all_overrides(db).items():
            click.echo(f"override for {who}: " + ", ".join(f"{k}={v}" for k, v in values.items()))
        return
    values = store.effective_limits(db, settings, info.id)
    if values is None:
        click.echo(f"{info.name} is an admin: not limited")
        return
    for line in usage_lines(values, store.usage(db, info.id)):
        click.echo(line)


@limits.command("set")
@click.argument("name")
@click.argument("value")
@click.option("--user", help="Set USER's own value (default: the whole team's).")
@click.pass_obj
def limits_set(settings: Settings, name: str, value: str, user: str | None) -> None:
    """Set limit NAME to VALUE: a whole number (0: no limit; bytes may end in MiB or GiB), or
    "default" to remove the team's value or the user's override."""
    from netlens.cli import _fail
    from netlens.storage import limits as store

    db, info = _db_and_user(settings, user)
    try:
        new = (
            store.set_team_limit(db, name, value)
            if info is None
            else store.set_user_limit(db, info.id, name, value)
        )
    except store.LimitError as exc:
        _fail(str(exc))
    where = "team-wide" if info is None else f"for {info.name}"
    click.echo(f"{name} {where}: {'the default' if new is None else new}")
