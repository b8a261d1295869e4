"""The layering (issue 14): who may import whom, and a web process that never loads JAX.

    netlens (the CLI: cli.py, serve.py, remote.py, ...)   may import every layer below
    netlens.webapp      netlens.worker                     neither imports the other, except
                                                           webapp -> netlens.worker.datasets
    netlens.dispatch    (jobs, analyses, broker, reaper, heartbeat: no JAX)
    netlens.storage     netlens.migrations                 (SQL)

Imports are read from the source with `ast`, function-local ones included; the folders come
from pyproject.toml's [tool.setuptools.package-dir], so a new folder is checked too.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# A layer's modules: these names and everything under them. "netlens" (the CLI layer) is
# every module of the netlens/ folder itself that is not in another layer.
LAYERS = {
    "storage": ("netlens.storage", "netlens.migrations"),
    "dispatch": ("netlens.dispatch",),
    "worker": ("netlens.worker",),
    "webapp": ("netlens.webapp",),
    "cli": ("netlens",),
}
# importer layer: (layers it must not import, modules allowed all the same)
RULES = {
    "storage": (("dispatch", "worker", "webapp", "cli"), ()),
    "dispatch": (("worker", "webapp", "cli"), ()),
    "worker": (("webapp", "cli"), ()),
    "webapp": (("worker", "cli"), ("netlens.worker.datasets",)),
    "cli": ((), ()),
}
# The repository's folders install as netlens.*: as bare top-level names they must never be
# imported (they would load a second copy of every module).
BARE_NAMES = {"storage", "worker", "webapp", "migrations"}
HEAVY = ("jax", "flax", "optax")
SKIP_DIRS = {".venv", ".git", "build", "dist", "__pycache__", "node_modules"}


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def layer_of(module: str) -> str:
    """The most specific layer `module` belongs to ("cli" for the rest of netlens.*)."""
    best = max(
        (
            (prefix, layer)
            for layer, prefixes in LAYERS.items()
            for prefix in prefixes
            if _within(module, prefix)
        ),
        key=lambda pair: len(pair[0]),
        default=None,
    )
    if best is None:
        raise ValueError(f"{module} is in no layer")
    return best[1]


def python_files(folder: Path) -> list[Path]:
    """The .py files under `folder`, virtual environments, caches and builds left out."""
    found = []
    for top, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info"))
        found += [Path(top, f) for f in sorted(files) if f.endswith(".py")]
    return found


def source_modules() -> dict[str, Path]:
    """Module name -> file, for every .py the package-dir mapping installs."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package_dir = config["tool"]["setuptools"]["package-dir"]
    modules: dict[str, Path] = {}
    for package, folder in package_dir.items():
        for path in python_files(ROOT / folder):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules.setdefault(".".join((package, *parts)), path)
    return modules


def imports_of(
    tree: ast.AST,
    module: str | None,
    is_package: bool = False,
    known: frozenset[str] | set[str] = frozenset(),
) -> list[tuple[str, int]]:
    """(imported module, line) for every import in `tree`, at any depth; `from a import b`
    counts as `a.b` when that is a module (in `known`); relative imports are resolved against
    `module` (left out when it is None); string literals given to importlib.import_module
    count too."""
    package = "" if module is None else module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level and module is None:
                continue
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.append((full if full in known else base, node.lineno))
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__"):
                found.append((node.args[0].value, node.lineno))
    return found


def violations(module: str, imported: str) -> str | None:
    """Why `module` may not import `imported`, or None."""
    if not _within(imported, "netlens"):
        return None
    source, target = layer_of(module), layer_of(imported)
    forbidden, allowed = RULES[source]
    if target in forbidden and not any(_within(imported, a) for a in allowed):
        return f"{source} must not import {target}"
    return None


def test_every_layer_has_modules_and_every_module_a_layer():
    modules = source_modules()
    layers = {layer_of(m) for m in modules}
    assert layers == set(LAYERS), layers
    assert "netlens.dispatch.submission" in modules and "netlens.serve" in modules


def test_imports_follow_the_layers():
    modules = source_modules()
    known = set(modules)
    bad = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        for imported, line in imports_of(tree, module, path.name == "__init__.py", known):
            if why := violations(module, imported):
                bad.append(f"{path.relative_to(ROOT)}:{line}: {module} imports {imported} ({why})")
    assert not bad, "\n".join(bad)


def test_no_file_imports_the_bare_folder_names():
    bad = []
    for path in python_files(ROOT):
        tree = ast.parse(path.read_text(), str(path))
        for imported, line in imports_of(tree, None):
            if imported.split(".")[0] in BARE_NAMES:
                bad.append(f"{path.relative_to(ROOT)}:{line}: import {imported}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(
    "module, source, why",
    [
        (
            "netlens.webapp.pages.x",
            "def f():\n    from netlens.worker import analyze\n",
            "webapp must not import worker",
        ),
        (
            "netlens.webapp.api",
            "from netlens.worker.service import run_worker\n",
            "webapp must not import worker",
        ),
        ("netlens.webapp.api", "from netlens.cli import main\n", "webapp must not import cli"),
        ("netlens.worker.jobs", "import netlens.webapp.app\n", "worker must not import webapp"),
        ("netlens.worker.jobs", "from ..webapp import app\n", "worker must not import webapp"),
        (
            "netlens.dispatch.reaper",
            "from netlens.worker import runner\n",
            "dispatch must not import worker",
        ),
        (
            "netlens.storage.jobs",
            "from netlens.dispatch.celery_app import send\n",
            "storage must not import dispatch",
        ),
        ("netlens.storage.jobs", "from netlens import serve\n", "storage must not import cli"),
        ("netlens.webapp.pages.new", "from netlens.worker.datasets import load_dataset\n", None),
        ("netlens.webapp.pages.new", "from netlens.worker import datasets\n", None),
        ("netlens.serve", "from netlens.webapp.app import create_app\n", None),
    ],
)
def test_the_check_sees_a_violation(module, source, why):
    known = set(source_modules())
    found = [
        violations(module, imported)
        for imported, _ in imports_of(ast.parse(source), module, False, known)
    ]
    assert [f for f in found if f] == ([why] if why else [])


def test_the_complete_web_app_and_the_cli_import_no_jax(tmp_path):
    """Every page module is imported by create_app (Dash's page registry)."""
    code = f"""
import json, sys
from netlens.storage.settings import Settings
from netlens.webapp.app import create_app

create_app(Settings(home={str(tmp_path)!r}, database_url="sqlite://"))
out = {{"pages": sorted(m for m in sys.modules if m.startswith("pages.")),
        "web": [m for m in {HEAVY!r} if m in sys.modules]}}
import netlens.cli, netlens.serve
out["cli"] = [m for m in {HEAVY!r} if m in sys.modules]
out["worker"] = sorted(m for m in sys.modules if m.startswith("netlens.worker"))
print(json.dumps(out))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.splitlines()[-1])
    pages = {
        f"pages.{p.stem}" for p in (ROOT / "webapp" / "pages").glob("*.py") if p.stem != "__init__"
    }
    assert pages <= set(out["pages"]), pages - set(out["pages"])
    assert out["web"] == [] and out["cli"] == [], out
    assert all(
        m == "netlens.worker" or _within(m, "netlens.worker.datasets") for m in out["worker"]
    ), out["worker"]
