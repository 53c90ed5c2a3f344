"""The baseline job for B4: does nothing, so its rate is what RQ and the worker setup cost."""

from __future__ import annotations


def noop(**_kwargs) -> dict:
    return {"outcome": "noop"}
