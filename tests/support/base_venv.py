"""A fresh virtual environment holding botctl with its base dependencies only (no extras).

Downloading the dependencies again would take minutes and need the network, so the base
dependency closure (read from the project's own metadata, markers evaluated without extras) is
copied file by file from the environment running the tests, then botctl itself is installed
from a copy of the source tree with ``pip install --no-deps --no-index``, as a plain (not
editable) install: package data must be in it. ``pip check`` then proves nothing is missing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PACKAGES = ("cli", "bot_core", "migrations", "kql", "ops")


def base_closure(requirements: list[str], extras: frozenset[str] = frozenset()) -> dict[str, metadata.Distribution]:
    """The installed distributions these requirement strings need, transitively."""
    found: dict[str, metadata.Distribution] = {}
    todo = [(r, extras) for r in requirements]
    while todo:
        text, wanted = todo.pop()
        req = Requirement(text)
        if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in (wanted or {""})):
            continue
        name = canonicalize_name(req.name)
        if name in found:
            continue
        dist = metadata.distribution(req.name)
        found[name] = dist
        todo += [(r, frozenset(req.extras)) for r in dist.requires or []]
    return found


def make_base_venv(target: Path, root: Path) -> Path:
    """Build the venv at *target*; returns its ``bin`` folder."""
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(target)], check=True, capture_output=True)
    bin_dir = target / "bin"
    site = Path(subprocess.run([str(bin_dir / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()"
                                "['purelib'])"], check=True, capture_output=True, text=True).stdout.strip())
    source = target / "src"
    source.mkdir()
    for item in ("pyproject.toml", "README.md"):
        shutil.copy2(root / item, source / item)
    for package in PACKAGES:
        shutil.copytree(root / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    import tomllib

    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    # setuptools builds the wheel inside the venv (no build isolation: no index to fetch it from).
    closure = base_closure(project["dependencies"] + ["setuptools"])
    for dist in closure.values():
        for file in dist.files or []:
            if file.parts and file.parts[0] == "..":
                continue  # scripts of the dependencies: botctl's own is what the test runs
            src = Path(dist.locate_file(file))
            if src.is_file():
                dst = site / file
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
    pip = [str(bin_dir / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["install", "--no-deps", "--no-index", "--no-build-isolation", str(source)],
                   check=True, capture_output=True, cwd=target)
    check = subprocess.run(pip + ["check"], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"the base venv is incomplete: {check.stdout}{check.stderr}")
    shutil.rmtree(source)
    return bin_dir
