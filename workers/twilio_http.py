"""The adapter between the official `twilio` client and the network.

`edge` and `region` only change host names, and a domain's `base_url` misses the absolute
`next_page_url`s Twilio returns, so the one reliable seam is the HTTP client: with a base URL
(`TWILIO_API_BASE_URL`), every request to a `*.twilio.com` host is rewritten to it (scheme, host and
any path prefix) before it is sent. Unset, the client talks to Twilio.

Each answer's `Date` header is handed to a `TwilioClock`, so that "idle for 6 hours" is measured on
the clock that stamped the conversation.
"""

from __future__ import annotations

import contextlib
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit, urlunsplit

from requests.adapters import HTTPAdapter
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from workers.twilio_clock import TwilioClock


class BinderyHttpClient(TwilioHttpClient):
    """A `TwilioHttpClient` that can send `*.twilio.com` requests to `base_url` instead."""

    def __init__(
        self,
        base_url: str = "",
        *,
        timeout: float | None = None,
        pool_size: int = 32,
        clock: TwilioClock | None = None,
    ):
        super().__init__(timeout=timeout)
        self.clock = clock or TwilioClock()
        parts = urlsplit(base_url)
        self._base = (parts.scheme, parts.netloc, parts.path.rstrip("/")) if base_url else None
        # The parent sizes only the https pool; a local emulator is usually plain http.
        adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def rewrite(self, url: str) -> str:
        if self._base is None:
            return url
        parts = urlsplit(url)
        host = parts.hostname or ""
        if host != "twilio.com" and not host.endswith(".twilio.com"):
            return url
        scheme, netloc, prefix = self._base
        return urlunsplit((scheme, netloc, prefix + parts.path, parts.query, parts.fragment))

    def request(self, method, url, *args, **kwargs):
        response = super().request(method, self.rewrite(url), *args, **kwargs)
        date = response.headers.get("Date") if response.headers else None
        if date:
            with contextlib.suppress(TypeError, ValueError):
                self.clock.observe(parsedate_to_datetime(date).timestamp())
        return response


def make_client(
    account_sid: str,
    auth_token: str,
    base_url: str = "",
    timeout: float | None = 10.0,
    clock: TwilioClock | None = None,
) -> Client:
    """An official `twilio.rest.Client`, redirected to `base_url` when one is given (the
    emulator's URL, for instance); `clock` learns Twilio's time from each answer."""
    http_client = BinderyHttpClient(base_url, timeout=timeout, clock=clock)
    return Client(account_sid, auth_token, http_client=http_client)
