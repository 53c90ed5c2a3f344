"""A wheel built from the checkout installs, without the `local` or `dev` extras, into a fresh
virtualenv outside the checkout, and its production commands and app factory work from there.

It builds and installs for real (the runtime dependencies come from the package index, through
pip's cache after the first run): a minute or two, so it is marked `integration`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.packaging.test_production_imports import PRODUCTION_COMMANDS

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("webhooks", "workers", "emulator", "devstack")
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache", ".env"
)


def run(argv: list[str], **kwargs) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, f"{argv}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def test_the_wheel_installs_and_runs_without_the_extras(tmp_path):
    source = tmp_path / "source"  # a copy, so the build writes nothing into the checkout
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    wheels = tmp_path / "wheels"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(source)])
    [wheel] = wheels.glob("bindery-*.whl")

    names = set(zipfile.ZipFile(wheel).namelist())
    for package in PACKAGES:
        for module in (ROOT / package).rglob("*.py"):
            assert module.relative_to(ROOT).as_posix() in names, f"{module} not in the wheel"
        for data in (ROOT / package).rglob("*.json"):
            assert data.relative_to(ROOT).as_posix() in names, f"{data} not in the wheel"
    for folder in ("webhooks/ops/templates", "webhooks/ops/static"):  # the console's pages
        files = [f for f in (ROOT / folder).rglob("*") if f.is_file()]
        assert files, folder
        for data in files:
            assert data.relative_to(ROOT).as_posix() in names, f"{data} not in the wheel"

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    python, bindery = venv / "bin" / "python", venv / "bin" / "bindery"
    run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)])

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "TMPDIR": str(tmp_path),
        "TWILIO_AUTH_TOKEN": "a-token",
        "BINDERY_API_TOKEN": "an-api-token",
    }
    where = run(
        [str(python), "-c", "import workers; print(workers.__file__)"], cwd=elsewhere, env=env
    )
    assert where.startswith(str(venv)), where  # the wheel's copy, not the checkout's
    missing = subprocess.run(
        [str(python), "-c", "import fakeredis"], cwd=elsewhere, env=env, capture_output=True
    )
    assert missing.returncode != 0  # the extras really are absent

    assert run([str(bindery), "--help"], cwd=elsewhere, env=env).startswith("Usage: bindery")
    for args in PRODUCTION_COMMANDS:
        assert run([str(bindery), *args, "--help"], cwd=elsewhere, env=env).startswith("Usage: ")
    factory = (
        "from webhooks import create_app\n"
        "app = create_app()\n"
        "assert app.test_client().get('/healthz').status_code == 200\n"
        "print('ok')\n"
    )
    assert run([str(python), "-c", factory], cwd=elsewhere, env=env).strip() == "ok"
