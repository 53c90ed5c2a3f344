"""The production entry points import neither the emulator, nor the dev stack, nor fakeredis, and
importing them changes nothing: each check runs in a fresh Python where those three packages
cannot be imported (a `sys.meta_path` finder refuses them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

PRODUCTION_COMMANDS = [
    ["web"],
    ["worker"],
    ["clock"],
    ["jobs"],
    ["jobs", "failed"],
    ["jobs", "show"],
    ["jobs", "replay"],
    ["jobs", "conflicts"],
    ["cleanup"],
    ["reconcile"],
    ["status"],
    ["pool"],
    ["pool", "show"],
    ["pool", "put"],
    ["sessions"],
    ["sessions", "show"],
    ["sessions", "open"],
]
REFUSED = ("emulator", "devstack", "fakeredis")

REFUSE = textwrap.dedent(
    f"""
    import importlib.abc, sys

    attempts = []

    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {REFUSED!r}:
                attempts.append(name)
                raise ModuleNotFoundError(f"No module named {{name!r}} (refused)", name=name)
            return None

    sys.meta_path.insert(0, Refuse())
    """
)


def run(code: str, env: dict[str, str]) -> dict:
    """Run `code` after the refusing finder; it prints one JSON object, returned here."""
    result = subprocess.run(
        [sys.executable, "-c", REFUSE + textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_commands_and_the_app_factory_need_no_local_extra(tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
        "TMPDIR": str(tmp_path),
        "TWILIO_AUTH_TOKEN": "a-token",
        "BINDERY_API_TOKEN": "an-api-token",
    }
    report = run(
        f"""
        import json
        from click.testing import CliRunner
        from workers.cli import main

        runner = CliRunner()
        helps = {{}}
        for args in [[]] + {PRODUCTION_COMMANDS!r}:
            result = runner.invoke(main, [*args, "--help"])
            helps[" ".join(args)] = (result.exit_code, result.output[:200])
        from webhooks import create_app

        app = create_app()  # as gunicorn calls it: settings from the environment
        health = app.test_client().get("/healthz").status_code
        clean = list(attempts)
        dev = runner.invoke(main, ["dev", "--help"])
        print(json.dumps({{"helps": helps, "health": health, "attempts": clean,
                           "dev": [dev.exit_code, dev.output]}}))
        """,
        env,
    )
    for command, (code, output) in report["helps"].items():
        assert code == 0, (command, output)
        assert output.startswith("Usage: "), (command, output)
    assert report["health"] == 200
    assert report["attempts"] == []  # not even tried: no import guarded by an except
    code, output = report["dev"]
    assert code == 1 and "pip install 'bindery[local]'" in output, output


def test_importing_the_entry_points_changes_nothing(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    report = run(
        """
        import json, os, sys
        before = dict(os.environ)
        import webhooks, webhooks.gunicorn_config, workers.cli, workers.metrics, workers.worker
        print(json.dumps({
            "changed": sorted(set(os.environ.items()) ^ set(before.items())),
            "prometheus_client": "prometheus_client" in sys.modules,
        }))
        """,
        {**env, "TMPDIR": str(tmp_path)},
    )
    assert report == {"changed": [], "prometheus_client": False}
    assert list(tmp_path.iterdir()) == []  # no metrics directory made
