"""The embedded Redis of `bindery dev` when no other one answers: fakeredis's TCP server, in this
process. fakeredis comes with the `local` extra."""

from __future__ import annotations

import threading


class MissingFakeRedis(RuntimeError):
    """fakeredis (the `local` extra) is not installed."""


def start() -> tuple[str, object]:
    """(URL, server) of an embedded Redis on a free loopback port; `stop(server)` ends it."""
    try:
        from fakeredis import TcpFakeServer
    except ImportError:
        raise MissingFakeRedis("fakeredis is not installed") from None
    server = TcpFakeServer(("127.0.0.1", 0), server_type="redis")  # 0: the kernel picks
    server.RequestHandlerClass = _client_info_handler(server.RequestHandlerClass)
    threading.Thread(target=server.serve_forever, daemon=True, name="embedded-redis").start()
    host, port = server.server_address[:2]
    return f"redis://{host}:{port}/0", server


def stop(server) -> None:
    server.shutdown()
    server.server_close()


def _client_info_handler(base: type) -> type:
    """fakeredis 2.41's TCP server answers CLIENT INFO with `addr=('127.0.0.1', 5000)`, which
    redis-py cannot parse and RQ's worker start-up asks for; answer `addr=127.0.0.1:5000` as Redis
    does. The handler class is the server's own, so no private module is imported; the client info
    it fixes is fakeredis's, and the fix is skipped when a release no longer has that shape."""

    class Handler(base):
        def setup(self) -> None:
            super().setup()
            client = getattr(self, "current_client", None)
            info = getattr(getattr(client, "get_socket", lambda: None)(), "_client_info", None)
            for key in ("addr", "laddr"):
                if isinstance(info, dict) and isinstance(info.get(key), tuple):
                    info[key] = "{}:{}".format(*info[key][:2])

    return Handler
