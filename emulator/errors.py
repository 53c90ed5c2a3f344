"""Twilio's REST errors as small exception classes; each renders Twilio's JSON error body.

The body is `{code, message, more_info, status}` and nothing else: a body that also holds `type`
and `title` makes twilio-python raise a different exception class.
"""

from __future__ import annotations

from typing import Any, ClassVar


class TwilioError(Exception):
    """An error answer of the emulated API."""

    code: ClassVar[int] = 20500
    status: ClassVar[int] = 500
    default_message: ClassVar[str] = "Internal Server Error"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)

    @property
    def more_info(self) -> str:
        return f"https://www.twilio.com/docs/errors/{self.code}"

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": self.more_info,
            "status": self.status,
        }


class InternalServerError(TwilioError):
    code, status = 20500, 500


class InvalidParameter(TwilioError):
    """A malformed or missing parameter with no more specific Conversations code.

    Twilio does not document one code for this; 20001 is the emulator's stand-in.
    """

    code, status = 20001, 400
    default_message = "Invalid parameter"


class AuthenticationFailed(TwilioError):
    code, status = 20003, 401
    default_message = "Authenticate"


class MethodNotAllowed(TwilioError):
    code, status = 20004, 405
    default_message = "Method not allowed"


class NotFound(TwilioError):
    code, status = 20404, 404
    default_message = "The requested resource was not found"


class TooManyRequests(TwilioError):
    """Not processed: safe to retry after backing off."""

    code, status = 20429, 429
    default_message = "Too Many Requests"


class ConversationNotFound(TwilioError):
    code, status = 50350, 404
    default_message = "Conversation not found"


class UniqueNameTaken(TwilioError):
    code, status = 50353, 409
    default_message = "Conversation with provided unique name already exists"


class ConversationClosed(TwilioError):
    """Closed is final. Twilio does not document the status; the emulator answers 400."""

    code, status = 50377, 400
    default_message = "Conversation is closed and can not be updated"


class TimersRequireState(TwilioError):
    code, status = 50382, 400
    default_message = "Timers can only be set on creation together with State"


class InvalidAddress(TwilioError):
    code, status = 50407, 400
    default_message = "Invalid messaging binding address"


class InvalidProxyAddress(TwilioError):
    code, status = 50408, 400
    default_message = "Invalid messaging binding proxy address"


class AddressEqualsProxy(TwilioError):
    code, status = 50409, 400
    default_message = "Messaging binding address and proxy address must differ"


class AddressEmpty(TwilioError):
    code, status = 50411, 400
    default_message = "Messaging binding address is empty"


class ProxyAddressEmpty(TwilioError):
    code, status = 50412, 400
    default_message = "Messaging binding proxy address is empty"


class ChannelTypeMismatch(TwilioError):
    code, status = 50414, 400
    default_message = "Address and proxy address are of different channel types"


class BindingInUse(TwilioError):
    """The pair is held by another non-closed conversation, named in the message."""

    code, status = 50416, 409

    def __init__(self, holder_sid: str) -> None:
        self.holder_sid = holder_sid
        super().__init__(
            "A binding for this participant and proxy address already exists in Conversation "
            + holder_sid
        )


class IdentityInConversation(TwilioError):
    code, status = 50433, 409
    default_message = "Participant with this identity already exists in the Conversation"


class BindingInConversation(TwilioError):
    """The same pair, or the same Group MMS address, is already a participant of this one."""

    code, status = 50437, 409
    default_message = (
        "Participant with this messaging binding address and proxy address already exists "
        "in the Conversation"
    )


class ProjectedAddressMissing(TwilioError):
    code, status = 50434, 400
    default_message = (
        "This is a Group MMS conversation, but the given participant has neither an Address "
        "nor a ProjectedAddress"
    )
