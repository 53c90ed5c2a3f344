"""The /v1 REST routes of the Conversations API, in both the default-service form
(`/v1/Conversations/...`) and the service-scoped form (`/v1/Services/{IS}/Conversations/...`).

Authentication, limits and faults are applied to every /v1 request by the app (see `app.py`);
these views parse the form, call the Store and render. Writes to a conversation count towards its
per-second write limit.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from emulator import resources
from emulator.address_configurations import AutoCreationChange
from emulator.clock import parse_date
from emulator.defaults import (
    MAX_ADDRESS_CONFIGURATIONS_PAGE_SIZE,
    MAX_PARTICIPANT_CONVERSATIONS_PAGE_SIZE,
)
from emulator.engine import Engine
from emulator.errors import InvalidParameter
from emulator.messages import check_order
from emulator.paging import Page, PageRequest, meta, paginate
from emulator.participants import ParticipantSpec
from emulator.records import UNSET
from emulator.states import check_state
from emulator.webhook_events import Origin

blueprint = Blueprint("api", __name__)

OPERATIONS: dict[str, str] = {}
"""Flask endpoint -> operation name counted in `GET /_emulator/stats` `calls`."""

View = Callable[..., Any]


def _route(
    rule: str, operation: str, method: str, *, forms: str = "both"
) -> Callable[[View], View]:
    """Register a view under `/v1{rule}` and/or `/v1/Services/<service_sid>{rule}`."""

    def register(view: View) -> View:
        endpoint = operation.replace(".", "_")
        if forms in ("both", "default"):
            blueprint.add_url_rule(f"/v1{rule}", endpoint, view, methods=[method])
            OPERATIONS[f"api.{endpoint}"] = operation
        if forms in ("both", "scoped"):
            scoped = f"{endpoint}_scoped"
            blueprint.add_url_rule(
                f"/v1/Services/<service_sid>{rule}", scoped, view, methods=[method]
            )
            OPERATIONS[f"api.{scoped}"] = operation
        return view

    return register


def _engine() -> Engine:
    return current_app.extensions["emulator"]


def _account() -> str:
    return _engine().config.account_sid


def _service(service_sid: str | None) -> str:
    return service_sid or _engine().config.service_sid


def _origin() -> Origin:
    enabled = request.headers.get("X-Twilio-Webhook-Enabled", "").strip().lower() == "true"
    return Origin.api(enabled)


def _given(name: str) -> Any:
    """The form value, or UNSET when the request did not carry the parameter."""
    return request.form.get(name, UNSET)


def _int(name: str) -> Any:
    value = _given(name)
    if value is UNSET:
        return UNSET
    if value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidParameter(f"{name}: {value!r} is not a whole number") from None


def _bool(name: str) -> Any:
    value = _given(name)
    if value is UNSET:
        return UNSET
    if value.strip().lower() not in ("true", "false"):
        raise InvalidParameter(f"{name}: {value!r} must be true or false")
    return value.strip().lower() == "true"


def _json(body: Any, status: int = 200) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


def _no_content() -> Response:
    return Response(status=204)


def _page_request(max_size: int | None = None) -> PageRequest:
    return (
        PageRequest.parse(request.args, max_size) if max_size else PageRequest.parse(request.args)
    )


def _list(
    key: str,
    items: list[Any],
    render: Callable[[Any], dict[str, Any]],
    *,
    position: Callable[[Any], int],
    filters: list[tuple[str, str]] | None = None,
    descending: bool = False,
    max_size: int | None = None,
) -> Response:
    """A page of a short list, built whole for each request."""
    chunk, page_meta = paginate(
        items,
        _page_request(max_size),
        path=request.path,
        key=key,
        position=position,
        filters=filters or [],
        descending=descending,
    )
    return _json(resources.page(key, [render(item) for item in chunk], page_meta))


def _paged(
    key: str,
    page: Page[Any],
    page_request: PageRequest,
    render: Callable[[Any], dict[str, Any]],
    *,
    position: Callable[[Any], int],
    filters: list[tuple[str, str]] | None = None,
) -> Response:
    """A page the store picked (see `Store.conversations_page`)."""
    page_meta = meta(
        page,
        page_request,
        path=request.path,
        key=key,
        position=position,
        filters=filters or [],
    )
    return _json(resources.page(key, [render(item) for item in page.items], page_meta))


# -- services ---------------------------------------------------------------------------------


@_route("/Services", "services.list", "GET", forms="default")
def list_services() -> Response:
    account = _account()
    return _list(
        "services",
        _engine().store.list_services(),
        lambda s: resources.service(account, s),
        position=lambda s: s.seq,
    )


@_route("/Services", "services.create", "POST", forms="default")
def create_service() -> Response:
    friendly_name = request.form.get("FriendlyName")
    if not friendly_name:
        raise InvalidParameter("FriendlyName is required")
    service = _engine().store.create_service(friendly_name)
    return _json(resources.service(_account(), service), 201)


@_route("/Services/<sid>", "services.fetch", "GET", forms="default")
def fetch_service(sid: str) -> Response:
    return _json(resources.service(_account(), _engine().store.get_service(sid)))


# -- webhook configuration --------------------------------------------------------------------


@_route("/Configuration/Webhooks", "webhook_configuration.fetch", "GET", forms="scoped")
def fetch_service_webhooks(service_sid: str) -> Response:
    config = _engine().store.webhook_config(service_sid)
    return _json(resources.service_webhook_configuration(_account(), service_sid, config))


@_route("/Configuration/Webhooks", "webhook_configuration.update", "POST", forms="scoped")
def update_service_webhooks(service_sid: str) -> Response:
    config = _engine().store.update_webhook_config(service_sid, **_webhook_changes(target=False))
    return _json(resources.service_webhook_configuration(_account(), service_sid, config))


@_route("/Configuration/Webhooks", "account_webhook_configuration.fetch", "GET", forms="default")
def fetch_account_webhooks() -> Response:
    config = _engine().store.webhook_config(None)
    return _json(resources.account_webhook_configuration(_account(), config))


@_route("/Configuration/Webhooks", "account_webhook_configuration.update", "POST", forms="default")
def update_account_webhooks() -> Response:
    config = _engine().store.update_webhook_config(None, **_webhook_changes(target=True))
    return _json(resources.account_webhook_configuration(_account(), config))


def _webhook_changes(*, target: bool) -> dict[str, Any]:
    changes: dict[str, Any] = {
        "pre_webhook_url": _given("PreWebhookUrl"),
        "post_webhook_url": _given("PostWebhookUrl"),
        "method": _given("Method"),
        "filters": (
            tuple(f for f in request.form.getlist("Filters") if f)
            if "Filters" in request.form
            else UNSET
        ),
    }
    if target:
        changes["target"] = _given("Target")
    return changes


# -- address configurations -------------------------------------------------------------------


@_route("/Configuration/Addresses", "address_configurations.create", "POST", forms="default")
def create_address_configuration() -> Response:
    form = request.form
    configuration = _engine().store.create_address_configuration(
        form.get("Type") or "",
        form.get("Address") or "",
        friendly_name=form.get("FriendlyName"),
        address_country=form.get("AddressCountry"),
        auto_creation=_auto_creation(),
    )
    return _json(resources.address_configuration(_account(), configuration), 201)


@_route("/Configuration/Addresses", "address_configurations.list", "GET", forms="default")
def list_address_configurations() -> Response:
    kind = request.args.get("Type") or None
    account = _account()
    return _list(
        "address_configurations",
        _engine().store.list_address_configurations(kind),
        lambda a: resources.address_configuration(account, a),
        position=lambda a: a.seq,
        filters=[("Type", kind)] if kind else [],
        max_size=MAX_ADDRESS_CONFIGURATIONS_PAGE_SIZE,
    )


@_route("/Configuration/Addresses/<sid>", "address_configurations.fetch", "GET", forms="default")
def fetch_address_configuration(sid: str) -> Response:
    configuration = _engine().store.get_address_configuration(sid)
    return _json(resources.address_configuration(_account(), configuration))


@_route("/Configuration/Addresses/<sid>", "address_configurations.update", "POST", forms="default")
def update_address_configuration(sid: str) -> Response:
    configuration = _engine().store.update_address_configuration(
        sid, friendly_name=_given("FriendlyName"), auto_creation=_auto_creation()
    )
    return _json(resources.address_configuration(_account(), configuration))


@_route(
    "/Configuration/Addresses/<sid>", "address_configurations.delete", "DELETE", forms="default"
)
def delete_address_configuration(sid: str) -> Response:
    _engine().store.delete_address_configuration(sid)
    return _no_content()


def _auto_creation() -> AutoCreationChange:
    filters = request.form.getlist("AutoCreation.WebhookFilters")
    return AutoCreationChange(
        enabled=_bool("AutoCreation.Enabled"),
        type=_given("AutoCreation.Type"),
        conversation_service_sid=_given("AutoCreation.ConversationServiceSid"),
        webhook_url=_given("AutoCreation.WebhookUrl"),
        webhook_method=_given("AutoCreation.WebhookMethod"),
        webhook_filters=(
            tuple(f for f in filters if f)
            if "AutoCreation.WebhookFilters" in request.form
            else UNSET
        ),
        studio_flow_sid=_given("AutoCreation.StudioFlowSid"),
        studio_retry_count=_int("AutoCreation.StudioRetryCount"),
    )


# -- conversations ----------------------------------------------------------------------------


@_route("/Conversations", "conversations.create", "POST")
def create_conversation(service_sid: str | None = None) -> Response:
    form = request.form
    conversation = _engine().store.create_conversation(
        _service(service_sid),
        friendly_name=form.get("FriendlyName"),
        unique_name=form.get("UniqueName"),
        attributes=form.get("Attributes"),
        messaging_service_sid=form.get("MessagingServiceSid"),
        state=form.get("State"),
        timer_inactive=form.get("Timers.Inactive"),
        timer_closed=form.get("Timers.Closed"),
        origin=_origin(),
    )
    scope = resources.Scope(service_sid)
    return _json(resources.conversation(_account(), conversation, scope), 201)


@_route("/Conversations", "conversations.list", "GET")
def list_conversations(service_sid: str | None = None) -> Response:
    args = request.args
    filters = [(name, args[name]) for name in ("StartDate", "EndDate", "State") if args.get(name)]
    start = parse_date(args["StartDate"], "StartDate") if args.get("StartDate") else None
    end = None
    if args.get("EndDate"):
        end = parse_date(args["EndDate"], "EndDate")
        if len(args["EndDate"].strip()) == 10:  # a bare date includes its whole day
            end += timedelta(days=1)
    state, service, store = args.get("State") or None, _service(service_sid), _engine().store
    # The state and the service are checked before the paging parameters, as they always were.
    if state:
        check_state(state)
    store.get_service(service)
    page_request = _page_request()
    page = store.conversations_page(service, page_request, state=state, start=start, end=end)
    account, scope = _account(), resources.Scope(service_sid)
    return _paged(
        "conversations",
        page,
        page_request,
        lambda c: resources.conversation(account, c, scope),
        position=lambda c: c.seq,
        filters=filters,
    )


@_route("/Conversations/<sid>", "conversations.fetch", "GET")
def fetch_conversation(sid: str, service_sid: str | None = None) -> Response:
    conversation = _engine().store.get_conversation(_service(service_sid), sid)
    scope = resources.Scope(service_sid)
    return _json(resources.conversation(_account(), conversation, scope))


@_route("/Conversations/<sid>", "conversations.update", "POST")
def update_conversation(sid: str, service_sid: str | None = None) -> Response:
    engine, service = _engine(), _service(service_sid)
    engine.limits.write(engine.store.get_conversation(service, sid).sid)
    conversation = engine.store.update_conversation(
        service,
        sid,
        friendly_name=_given("FriendlyName"),
        unique_name=_given("UniqueName"),
        attributes=_given("Attributes"),
        messaging_service_sid=_given("MessagingServiceSid"),
        state=_given("State"),
        timer_inactive=_given("Timers.Inactive"),
        timer_closed=_given("Timers.Closed"),
        origin=_origin(),
    )
    scope = resources.Scope(service_sid)
    return _json(resources.conversation(_account(), conversation, scope))


@_route("/Conversations/<sid>", "conversations.delete", "DELETE")
def delete_conversation(sid: str, service_sid: str | None = None) -> Response:
    _engine().store.delete_conversation(_service(service_sid), sid, origin=_origin())
    return _no_content()


# -- participants -----------------------------------------------------------------------------


@_route("/Conversations/<conversation>/Participants", "participants.create", "POST")
def create_participant(conversation: str, service_sid: str | None = None) -> Response:
    engine, service, form = _engine(), _service(service_sid), request.form
    engine.limits.write(engine.store.get_conversation(service, conversation).sid)
    spec = ParticipantSpec(
        identity=form.get("Identity") or None,
        address=form.get("MessagingBinding.Address"),
        proxy_address=form.get("MessagingBinding.ProxyAddress"),
        projected_address=form.get("MessagingBinding.ProjectedAddress") or None,
        attributes=form.get("Attributes"),
        role_sid=form.get("RoleSid"),
    )
    participant = engine.store.add_participant(service, conversation, spec, origin=_origin())
    scope = resources.Scope(service_sid)
    return _json(resources.participant(_account(), participant, scope), 201)


@_route("/Conversations/<conversation>/Participants", "participants.list", "GET")
def list_participants(conversation: str, service_sid: str | None = None) -> Response:
    items = _engine().store.list_participants(_service(service_sid), conversation)
    account, scope = _account(), resources.Scope(service_sid)
    return _list(
        "participants",
        items,
        lambda p: resources.participant(account, p, scope),
        position=lambda p: p.seq,
    )


@_route("/Conversations/<conversation>/Participants/<sid>", "participants.fetch", "GET")
def fetch_participant(conversation: str, sid: str, service_sid: str | None = None) -> Response:
    participant = _engine().store.get_participant(_service(service_sid), conversation, sid)
    scope = resources.Scope(service_sid)
    return _json(resources.participant(_account(), participant, scope))


@_route("/Conversations/<conversation>/Participants/<sid>", "participants.update", "POST")
def update_participant(conversation: str, sid: str, service_sid: str | None = None) -> Response:
    engine, service = _engine(), _service(service_sid)
    engine.limits.write(engine.store.get_conversation(service, conversation).sid)
    participant = engine.store.update_participant(
        service,
        conversation,
        sid,
        attributes=_given("Attributes"),
        role_sid=_given("RoleSid"),
        identity=_given("Identity"),
        proxy_address=_given("MessagingBinding.ProxyAddress"),
        projected_address=_given("MessagingBinding.ProjectedAddress"),
        last_read_message_index=_int("LastReadMessageIndex"),
        last_read_timestamp=_given("LastReadTimestamp"),
        origin=_origin(),
    )
    scope = resources.Scope(service_sid)
    return _json(resources.participant(_account(), participant, scope))


@_route("/Conversations/<conversation>/Participants/<sid>", "participants.delete", "DELETE")
def delete_participant(conversation: str, sid: str, service_sid: str | None = None) -> Response:
    engine, service = _engine(), _service(service_sid)
    engine.limits.write(engine.store.get_conversation(service, conversation).sid)
    engine.store.remove_participant(service, conversation, sid, origin=_origin())
    return _no_content()


# -- messages ---------------------------------------------------------------------------------


@_route("/Conversations/<conversation>/Messages", "messages.create", "POST")
def create_message(conversation: str, service_sid: str | None = None) -> Response:
    engine, service, form = _engine(), _service(service_sid), request.form
    engine.limits.write(engine.store.get_conversation(service, conversation).sid)
    message = engine.store.add_message(
        service,
        conversation,
        author=form.get("Author"),
        body=form.get("Body"),
        attributes=form.get("Attributes"),
        origin=_origin(),
    )
    scope = resources.Scope(service_sid)
    return _json(resources.message(_account(), message, scope), 201)


@_route("/Conversations/<conversation>/Messages", "messages.list", "GET")
def list_messages(conversation: str, service_sid: str | None = None) -> Response:
    order = check_order(request.args.get("Order") or "asc")
    service, store = _service(service_sid), _engine().store
    store.get_conversation(service, conversation)  # its 404 before the paging parameters' 400
    page_request = _page_request()
    page = store.messages_page(service, conversation, page_request, order=order)
    account, scope = _account(), resources.Scope(service_sid)
    return _paged(
        "messages",
        page,
        page_request,
        lambda m: resources.message(account, m, scope),
        position=lambda m: m.seq,
        filters=[("Order", order)] if "Order" in request.args else [],
    )


@_route("/Conversations/<conversation>/Messages/<sid>", "messages.fetch", "GET")
def fetch_message(conversation: str, sid: str, service_sid: str | None = None) -> Response:
    message = _engine().store.get_message(_service(service_sid), conversation, sid)
    scope = resources.Scope(service_sid)
    return _json(resources.message(_account(), message, scope))


# -- participant conversations ----------------------------------------------------------------


@_route("/ParticipantConversations", "participant_conversations.list", "GET")
def list_participant_conversations(service_sid: str | None = None) -> Response:
    """Where an address or identity is a participant. The account-level form lists the default
    service's conversations, as `/v1/Conversations` does (Twilio does not say otherwise)."""
    address, identity = request.args.get("Address"), request.args.get("Identity")
    if bool(address) == bool(identity):
        raise InvalidParameter("Exactly one of Address and Identity is required")
    service, store = _service(service_sid), _engine().store
    store.get_service(service)  # its 404 before the paging parameters' 400
    page_request = _page_request(MAX_PARTICIPANT_CONVERSATIONS_PAGE_SIZE)
    page = store.participant_conversations_page(
        service, page_request, address=address or None, identity=identity or None
    )
    account, scope = _account(), resources.Scope(service_sid)
    filters = [("Address", address)] if address else [("Identity", identity or "")]
    return _paged(
        "conversations",
        page,
        page_request,
        lambda pc: resources.participant_conversation(account, pc[0], pc[1], scope),
        position=lambda pc: pc[0].seq,
        filters=filters,
    )
