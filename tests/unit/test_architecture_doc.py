"""docs/architecture.md's module tree names every module: a new file without a line there
fails here, so the tree stays the map a newcomer reads first."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("netlens", "storage", "worker", "webapp", "migrations")


def _tree() -> str:
    text = (ROOT / "docs" / "architecture.md").read_text()
    return re.search(r"^# Architecture\n\n```\n(.*?)\n```", text, re.S | re.M).group(1)


def _named(tree: str, path: Path) -> bool:
    """The file by name, or (for a folder of small parts, e.g. figures/) its folder."""
    words = set(re.findall(r"[\w.\-]+/?", tree))
    return path.name in words or any(f"{part}/" in words for part in path.parent.parts[1:])


def test_every_module_is_in_the_tree():
    tree = _tree()
    missing = [
        str(p.relative_to(ROOT))
        for folder in FOLDERS
        for p in sorted((ROOT / folder).rglob("*.py"))
        if p.name != "__init__.py"
        and "versions" not in p.parts
        and not _named(tree, p.relative_to(ROOT))
    ]
    assert not missing, f"not in docs/architecture.md's module tree: {missing}"


def test_the_tree_names_no_module_that_is_gone():
    tree = _tree()
    existing = {p.name for folder in FOLDERS for p in (ROOT / folder).rglob("*.py")}
    named = set(re.findall(r"\b([a-z_0-9]+\.py)\b", tree))
    assert not named - existing, f"named in the tree but gone: {sorted(named - existing)}"
