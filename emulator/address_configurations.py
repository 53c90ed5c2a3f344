"""Address Configurations (`/v1/Configuration/Addresses`, SIDs IG...): for each Twilio address,
whether an inbound message that no conversation holds autocreates one, and in which service.

An inbound message to `to` finds the configuration whose address is `to`, or whose address with
its type's prefix is (`+15550001111` of type `whatsapp` is `whatsapp:+15550001111`). Without a
configuration the emulator autocreates in the default service, as it did before configurations
existed; Twilio's own behaviour for an unconfigured number depends on its messaging service, which
the emulator does not model. The `webhook` and `studio` types are kept and shown, but their
conversation-scoped webhook and Studio flow are not called.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields

from emulator import channels
from emulator.clock import TimeSource
from emulator.errors import InvalidParameter, NotFound
from emulator.records import UNSET, AddressConfiguration, AutoCreation, Unset
from emulator.services import Services
from emulator.sids import new_sid

AUTO_CREATION_TYPES = ("webhook", "studio", "default")
WEBHOOK_METHODS = ("GET", "POST")


@dataclass(frozen=True)
class AutoCreationChange:
    """The `AutoCreation.*` parameters a request carried; UNSET for those it did not."""

    enabled: bool | Unset = UNSET
    type: str | Unset = UNSET
    conversation_service_sid: str | None | Unset = UNSET
    webhook_url: str | None | Unset = UNSET
    webhook_method: str | None | Unset = UNSET
    webhook_filters: tuple[str, ...] | Unset = UNSET
    studio_flow_sid: str | None | Unset = UNSET
    studio_retry_count: int | None | Unset = UNSET


class AddressConfigurations:
    """The account's address configurations; called by the Store with its lock held."""

    def __init__(self, services: Services, clock: TimeSource, seq: Iterator[int]) -> None:
        self._services = services
        self._clock = clock
        self._seq = seq
        self._configurations: dict[str, AddressConfiguration] = {}

    def create(
        self,
        type: str,
        address: str,
        *,
        friendly_name: str | None = None,
        address_country: str | None = None,
        auto_creation: AutoCreationChange | None = None,
    ) -> AddressConfiguration:
        kind = (type or "").lower()
        if kind not in channels.ADDRESS_TYPES:
            raise InvalidParameter(
                f"Type: {type!r} must be one of {', '.join(channels.ADDRESS_TYPES)}"
            )
        if not address or len(address) > channels.MAX_ADDRESS_LENGTH:
            raise InvalidParameter("Address is required, at most 256 characters")
        taken = self._by_address(address)
        if taken is not None:
            # Twilio does not document this answer's code; 20001 is the emulator's stand-in.
            raise InvalidParameter(f"Address {address} is already configured ({taken.sid})")
        now = self._clock.now()
        configuration = AddressConfiguration(
            sid=new_sid("IG"),
            seq=next(self._seq),
            type=kind,
            address=address,
            friendly_name=friendly_name or None,
            address_country=address_country or None,
            auto_creation=AutoCreation(),
            date_created=now,
            date_updated=now,
        )
        self._apply(configuration, auto_creation or AutoCreationChange())
        self._configurations[configuration.sid] = configuration
        return configuration

    def all(self, type: str | None = None) -> list[AddressConfiguration]:
        kind = type.lower() if type else None
        return [c for c in self._configurations.values() if kind is None or c.type == kind]

    def get(self, key: str) -> AddressConfiguration:
        """By IG SID or by address."""
        found = self._configurations.get(key) or self._by_address(key)
        if found is None:
            raise NotFound(f"The requested resource /Configuration/Addresses/{key} was not found")
        return found

    def update(
        self,
        configuration: AddressConfiguration,
        *,
        friendly_name: str | None | Unset = UNSET,
        auto_creation: AutoCreationChange | None = None,
    ) -> None:
        self._apply(configuration, auto_creation or AutoCreationChange())
        if not isinstance(friendly_name, Unset):
            configuration.friendly_name = friendly_name or None
        configuration.date_updated = self._clock.now()

    def delete(self, configuration: AddressConfiguration) -> None:
        del self._configurations[configuration.sid]

    def for_inbound(self, to: str) -> AddressConfiguration | None:
        """The configuration of the address an inbound message was sent to, if there is one."""
        for configuration in self._configurations.values():
            if to in (configuration.address, _with_prefix(configuration)):
                return configuration
        return None

    def _by_address(self, address: str) -> AddressConfiguration | None:
        return next((c for c in self._configurations.values() if c.address == address), None)

    def _apply(self, configuration: AddressConfiguration, change: AutoCreationChange) -> None:
        """Check every given AutoCreation field, then set them all (nothing changes on error)."""
        given = {
            f.name: getattr(change, f.name)
            for f in fields(change)
            if not isinstance(getattr(change, f.name), Unset)
        }
        if "type" in given:
            given["type"] = str(given["type"]).lower()
            if given["type"] not in AUTO_CREATION_TYPES:
                raise InvalidParameter(
                    f"AutoCreation.Type: {change.type!r} must be webhook, studio or default"
                )
        if given.get("webhook_method"):
            given["webhook_method"] = str(given["webhook_method"]).upper()
            if given["webhook_method"] not in WEBHOOK_METHODS:
                raise InvalidParameter(
                    f"AutoCreation.WebhookMethod: {change.webhook_method!r} must be get or post"
                )
        service_sid = given.get("conversation_service_sid")
        if service_sid:
            self._services.get(service_sid)
        for name, value in given.items():
            if name != "webhook_filters" and value == "":
                value = None
            setattr(configuration.auto_creation, name, value)


def _with_prefix(configuration: AddressConfiguration) -> str:
    """The address as a participant binding writes it: `whatsapp:+1...` for type whatsapp."""
    kind, address = configuration.type, configuration.address
    if kind in channels.PREFIXED and not address.startswith(f"{kind}:"):
        return f"{kind}:{address}"
    return address
