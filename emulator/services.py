"""Conversation Services and the webhook configurations: each service's and the account's."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import replace

from emulator.clock import TimeSource
from emulator.errors import InvalidParameter, NotFound
from emulator.records import UNSET, Service, Unset, WebhookConfig
from emulator.sids import new_sid

WEBHOOK_METHODS = ("GET", "POST")
WEBHOOK_TARGETS = ("webhook", "flex")


class Services:
    """The account's Conversation Services, the default one first (it always exists and keeps its
    SID across resets), and where their webhook events go.

    Called by the Store with its lock held; hands out live records."""

    def __init__(self, clock: TimeSource, default_service_sid: str, seq: Iterator[int]) -> None:
        self._clock = clock
        self._seq = seq
        now = clock.now()
        self.default_service_sid = default_service_sid
        self._services = {
            default_service_sid: Service(
                default_service_sid, 0, "Default Conversations Service", now, now
            )
        }
        self._account_webhooks = WebhookConfig()

    def create(self, friendly_name: str | None) -> Service:
        now = self._clock.now()
        service = Service(new_sid("IS"), next(self._seq), friendly_name, now, now)
        self._services[service.sid] = service
        return service

    def all(self) -> list[Service]:
        return list(self._services.values())

    def get(self, service_sid: str) -> Service:
        service = self._services.get(service_sid)
        if service is None:
            raise NotFound(f"The requested resource /Services/{service_sid} was not found")
        return service

    def __len__(self) -> int:
        return len(self._services)

    # -- webhook configuration ----------------------------------------------------------------

    def webhook_config(self, service_sid: str | None) -> WebhookConfig:
        """The service's configuration, or the account's when `service_sid` is None."""
        if service_sid is None:
            return self._account_webhooks
        return self.get(service_sid).webhooks

    def update_webhook_config(
        self,
        service_sid: str | None,
        *,
        pre_webhook_url: str | None | Unset = UNSET,
        post_webhook_url: str | None | Unset = UNSET,
        filters: tuple[str, ...] | Unset = UNSET,
        method: str | Unset = UNSET,
        target: str | Unset = UNSET,
    ) -> WebhookConfig:
        if not isinstance(method, Unset) and method.upper() not in WEBHOOK_METHODS:
            raise InvalidParameter(f"Method: {method!r} must be GET or POST")
        if not isinstance(target, Unset) and target not in WEBHOOK_TARGETS:
            raise InvalidParameter(f"Target: {target!r} must be webhook or flex")
        config = self.webhook_config(service_sid)
        if not isinstance(pre_webhook_url, Unset):
            config.pre_webhook_url = pre_webhook_url or None
        if not isinstance(post_webhook_url, Unset):
            config.post_webhook_url = post_webhook_url or None
        if not isinstance(filters, Unset):
            config.filters = tuple(filters)
        if not isinstance(method, Unset):
            config.method = method.upper()
        if not isinstance(target, Unset):
            config.target = target
        return config

    def webhook_configs_for(self, service_sid: str) -> list[WebhookConfig]:
        """The configurations an event of this service goes to: the service's, then the account's.

        Twilio does not document how the two levels combine; the emulator sends to both.
        """
        return [self.webhook_config(service_sid), self._account_webhooks]


def snapshot(service: Service) -> Service:
    return replace(service, webhooks=copy.copy(service.webhooks))
