"""Make sure a Redis answers for `make test`: `python -m workers.redis_up`.

REDIS_URL when set (never started here: it is somebody else's server); otherwise 127.0.0.1:6379,
started with `redis-server` (no persistence) when nothing answers there and the binary exists.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import redis

from workers.settings import DEFAULT_REDIS_URL


def answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def main() -> int:
    url = os.environ.get("REDIS_URL", "")
    if url:
        if answers(url):
            print(f"redis: using REDIS_URL ({url.split('@')[-1]})")
            return 0
        print(
            f"redis: REDIS_URL is set but nothing answers at {url.split('@')[-1]}", file=sys.stderr
        )
        return 1
    if answers(DEFAULT_REDIS_URL):
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
    subprocess.run(
        [
            server,
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        check=True,
    )
    for _ in range(50):
        if answers(DEFAULT_REDIS_URL):
            print("redis: started redis-server on 127.0.0.1:6379")
            return 0
        time.sleep(0.1)
    print("redis: started redis-server but it does not answer on 127.0.0.1:6379", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
