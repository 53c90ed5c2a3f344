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
