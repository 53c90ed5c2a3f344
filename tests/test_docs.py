"""The README and .env.example say what the code reads: every setting is in both."""

from dataclasses import fields
from pathlib import Path

from workers.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
PROCESS_VARIABLES = ["BINDERY_LOG_LEVEL", "PORT", "PROMETHEUS_MULTIPROC_DIR"]


def test_every_setting_is_documented():
    readme = (ROOT / "README.md").read_text()
    example = (ROOT / ".env.example").read_text()
    names = [f.metadata["env"] for f in fields(Settings)] + PROCESS_VARIABLES
    for name in names:
        assert f"| `{name}` |" in readme, f"{name} missing from README's settings table"
        assert f"\n{name}=" in example, f"{name} missing from .env.example"


def test_quickstart_has_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    quickstart = readme.split("## Quickstart", 1)[1].split("##", 1)[0]
    assert "make dev" in quickstart and "make test" in quickstart


def test_the_layout_table_names_what_exists():
    """Every path in the Layout table exists (a moved module leaves no stale row), and every
    top-level package has a row."""
    readme = (ROOT / "README.md").read_text()
    layout = readme.split("## Layout", 1)[1]
    rows = [line for line in layout.splitlines() if line.startswith("| `")]
    named = [cell.strip("` ") for row in rows for cell in row.split("|")[1].split(",")]
    folder = ""
    for name in named:
        path = ROOT / name if "/" in name else ROOT / folder / name
        assert path.exists(), f"README's Layout names {name}, which does not exist"
        if "/" in name:
            folder = name.rsplit("/", 1)[0] if not name.endswith("/") else name
    for package in ("webhooks", "workers", "emulator", "devstack"):
        assert any(n == f"{package}/" or n.startswith(f"{package}/") for n in named), package
