"""How pages show addresses and times: numbers masked as in the logs, times in UTC."""

from __future__ import annotations

import time
from datetime import datetime

from workers.addresses import mask


def mask_address(address: str) -> str:
    return mask(address or "")


def mask_pair(pair_id: str) -> str:
    """`+15551230001|+15550001111` -> `+1555*****01 | +1555*****11`."""
    address, _, proxy = (pair_id or "").partition("|")
    return f"{mask(address)} | {mask(proxy)}" if proxy else mask(address)


def _epoch(value) -> float:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return 0.0
    return 0.0


def when(value) -> str:
    """Epoch seconds or ISO 8601 -> `2026-11-26 20:00:05Z`; `-` for nothing."""
    epoch = _epoch(value)
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(epoch)) if epoch else "-"


def ago(value, now: float | None = None) -> str:
    """`42 s ago`, `5 min ago`, `3 h ago`, `2 d ago`; `-` for nothing."""
    epoch = _epoch(value)
    if not epoch:
        return "-"
    seconds = max(0.0, (time.time() if now is None else now) - epoch)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"
