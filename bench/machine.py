"""What the figures were measured on: the machine, the versions, the code."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

from bench.harness import REPO

PACKAGES = (
    "bindery",
    "flask",
    "werkzeug",
    "gunicorn",
    "rq",
    "redis",
    "hiredis",
    "twilio",
    "requests",
)


def describe() -> dict:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kb = int(line.split()[1])
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def versions() -> dict:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    server = shutil.which("redis-server")
    if server:
        out = subprocess.run([server, "--version"], capture_output=True, text=True).stdout
        found["redis-server"] = next(
            (p.split("=", 1)[1] for p in out.split() if p.startswith("v=")), out.strip()
        )
    return found


def code() -> dict:
    """The commit measured, and whether files outside bench/ differed from it (other work in
    progress is measured too: the processes run this working tree)."""

    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return result.stdout

    changed = [
        line[3:]
        for line in git("status", "--porcelain").splitlines()
        if line[3:] and not line[3:].startswith("bench/")
    ]
    return {"commit": git("rev-parse", "HEAD").strip(), "uncommitted_outside_bench": changed}


def bindery_settings() -> dict:
    """The settings every benchmark runs Bindery with: the defaults (secrets shown as set or not)."""
    from workers.settings import Settings

    return {
        name: value
        for name, value in Settings().public_items()
        if name.startswith("BINDERY_") and name != "BINDERY_API_TOKEN"
    }
