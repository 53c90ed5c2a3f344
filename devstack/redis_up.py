"""Make sure a Redis answers for `make test`: `python -m devstack.redis_up`.

REDIS_URL when set (never started here: it is somebody else's server); otherwise 127.0.0.1:6379,
started with `redis-server` (no persistence) when nothing answers there and the binary exists.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from devstack.processes import redis_answers, wait_for
from workers.settings import DEFAULT_REDIS_URL


def main() -> int:
    url = os.environ.get("REDIS_URL", "")
    if url:
        if redis_answers(url):
            print(f"redis: using REDIS_URL ({url.split('@')[-1]})")
            return 0
        print(
            f"redis: REDIS_URL is set but nothing answers at {url.split('@')[-1]}", file=sys.stderr
        )
        return 1
    if redis_answers(DEFAULT_REDIS_URL):
        print("redis: using 127.0.0.1:6379")
        return 0
    server = shutil.which("redis-server")
    if not server:
        print(
            "redis: nothing answers at 127.0.0.1:6379 and redis-server is not installed; "
            "set REDIS_URL or install Redis",
            file=sys.stderr,
        )
        return 1
    argv = [server, "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379"]
    subprocess.run([*argv, "--save", "", "--appendonly", "no"], check=True)
    try:
        wait_for(lambda: redis_answers(DEFAULT_REDIS_URL), 5, "redis-server", step=0.1)
    except AssertionError:
        print(
            "redis: started redis-server but it does not answer on 127.0.0.1:6379", file=sys.stderr
        )
        return 1
    print("redis: started redis-server on 127.0.0.1:6379")
    return 0


if __name__ == "__main__":
    sys.exit(main())
