"""The adapter that points the official `twilio` client at another base URL.

`edge` and `region` only change host names, and a domain's `base_url` misses the absolute
`next_page_url`s Twilio returns, so the one reliable seam is the HTTP client: every request to a
`*.twilio.com` host is rewritten to `TWILIO_API_BASE_URL` (scheme, host and any path prefix) before it
is sent. Unset, the client talks to Twilio.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from requests.adapters import HTTPAdapter
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client


class RedirectingHttpClient(TwilioHttpClient):
    """A `TwilioHttpClient` whose `*.twilio.com` requests go to `base_url` instead."""

    def __init__(self, base_url: str, *, timeout: float | None = None, pool_size: int = 32):
        super().__init__(timeout=timeout)
        parts = urlsplit(base_url)
        self._scheme = parts.scheme
        self._netloc = parts.netloc
        self._prefix = parts.path.rstrip("/")
        # The parent only sizes the https pool; a local emulator is usually plain http.
        adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def rewrite(self, url: str) -> str:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if host != "twilio.com" and not host.endswith(".twilio.com"):
            return url
        return urlunsplit(
            (self._scheme, self._netloc, self._prefix + parts.path, parts.query, parts.fragment)
        )

    def request(self, method, url, *args, **kwargs):
        return super().request(method, self.rewrite(url), *args, **kwargs)


def make_client(
    account_sid: str,
    auth_token: str,
    base_url: str = "",
    timeout: float | None = 10.0,
) -> Client:
    """An official `twilio.rest.Client`, redirected to `base_url` when one is given."""
    if base_url:
        http_client = RedirectingHttpClient(base_url, timeout=timeout)
    else:
        http_client = TwilioHttpClient(timeout=timeout)
    return Client(account_sid, auth_token, http_client=http_client)
