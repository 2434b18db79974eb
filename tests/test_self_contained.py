"""The repository stands on its own: no file refers to anything outside it (a sibling folder, this
machine's paths), and the TimescaleDB test server is the project's own, pinned by its lock file."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.conftest import REPO, TSDB_TOOL

SKIP_DIRS = {
    ".git",
    ".venv",
    "node_modules",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    "build",
    "dist",
    "site",  # `make docs` builds the documentation site here (git-ignored)
}
TEXT = {
    ".py",
    ".md",
    ".sh",
    ".yml",
    ".yaml",
    ".toml",
    ".json",
    ".mjs",
    ".conf",
    ".cfg",
    ".ini",
    ".txt",
    ".html",
    ".sql",
    ".example",
    ".csv",
}
OUTSIDE = re.compile(r"\.\./|/work/")
"""A parent-relative path (a sibling of the checkout), or this machine's work folder."""
EXCEPTIONS: dict[Path, str] = {
    Path("tests/simulators/test_feeds.py"): "a feed source that climbs out of its data folder, "
    "refused: hostile input, not a reference",
}


def project_files() -> list[Path]:
    found = []
    for path in REPO.rglob("*"):
        relative = path.relative_to(REPO)
        if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in relative.parts):
            continue
        if path.is_file() and (
            path.suffix in TEXT or path.name in ("Makefile", "Dockerfile", "run")
        ):
            found.append(relative)
    return found


def test_no_file_refers_outside_the_repository() -> None:
    files = project_files()
    assert Path("tests/conftest.py") in files and Path("Makefile") in files
    offending = []
    for relative in files:
        if relative in EXCEPTIONS or relative == Path(__file__).relative_to(REPO):
            continue
        for number, line in enumerate(
            (REPO / relative).read_text(errors="replace").splitlines(), 1
        ):
            if OUTSIDE.search(line):
                offending.append(f"{relative}:{number}: {line.strip()}")
    assert not offending, "\n".join(offending)


def test_the_timescaledb_test_server_is_pinned_by_its_lock_file() -> None:
    package = json.loads((TSDB_TOOL / "package.json").read_text())
    lock = json.loads((TSDB_TOOL / "package-lock.json").read_text())
    for name, version in package["dependencies"].items():
        locked = lock["packages"][f"node_modules/{name}"]
        assert locked["version"] == version and locked["integrity"].startswith("sha512-")
