"""`bindery demo`'s masked rider/driver round, run by the real command against a real `bindery
dev` stack (private Redis, free ports): 200 trips over a pool of 10 numbers, sticky reuse, the
exhausted pool's error, and "duplicate binding attempts: 0" read from the emulator's counts."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from devstack.processes import BINDERY, PrivateRedis, Process, free_port, wait_for
from workers.cli import local_stack

pytestmark = pytest.mark.integration


def test_the_masked_round(tmp_path):
    server = PrivateRedis()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "BINDERY_"))}
    env["REDIS_URL"] = server.url
    argv = [BINDERY, "dev", "--port", str(free_port()), "--emulator-port", str(free_port())]
    dev = Process("dev", argv, env, cwd=tmp_path, split_stderr=True)
    try:
        state = tmp_path / local_stack.STATE_FILE

        def up():
            assert dev.alive(), dev.output(3000) + dev.errors()[-3000:]
            return local_stack.read(state)

        wait_for(up, 90, "bindery dev to write its state file", 0.2)
        demo = subprocess.run(
            [BINDERY, "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=420
        )
        out = demo.stdout
        assert demo.returncode == 0, out[-4000:] + demo.stderr[-3000:]
        rides = out[out.index("6. Masked trips") :]
        assert re.search(r"^\s+trips opened\s+200$", rides, re.M), rides
        assert re.search(r"^\s+trips failed\s+0$", rides, re.M), rides
        assert re.search(r"^\s+pairs given twice at once\s+0$", rides, re.M), rides
        assert re.search(r"^\s+pool exhausted, answered with its error\s+yes$", rides, re.M)
        sticky = re.search(r"returning riders on the same number\s+(\d+) of (\d+)", rides)
        assert sticky and int(sticky.group(2)) > 0
        assert int(sticky.group(1)) >= int(sticky.group(2)) * 0.9, rides  # prefer-sticky
        # The exhausted pool's error names the pool and the driver, masked.
        assert re.search(r"10 open, on 10 different numbers for the driver", rides), rides
        refused = re.search(r"the next: failed: (.*)$", rides, re.M)
        assert refused and "demo-rides" in refused.group(1) and "*****" in refused.group(1)
        assert out.rstrip().splitlines()[-1] == "duplicate binding attempts: 0"
    finally:
        dev.stop(timeout=30)
        server.stop()
