"""Messages and events WeChat delivers to the message URL for an authorized account, typed.

Every delivery has ``ToUserName`` (the account's ``gh_`` id), ``FromUserName`` (the fan's openid,
or WeChat's own for audit events), ``CreateTime`` and ``MsgType``; those are required. The typed
fields of each kind are read leniently (absent -> None): WeChat adds fields over time, and a
message of a kind we do not know is kept whole (``AccountMessage`` with all its fields), never
refused. ``fields`` always holds every field exactly as parsed, nested elements included.

Sources: Official Account messages and events
(https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_standard_messages.html,
https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_event_pushes.html),
audit events (../shared/wechat-protocol.md section 1), the nickname audit
(https://developers.weixin.qq.com/doc/oplatform/Third-party_Platforms/2.0/api/Mini_Program_Basic_Info/setnickname.html).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wechat_core.errors import XmlError
from wechat_core.protocol.messages import optional_text, parse_xml, required_integer, required_text


@dataclass(frozen=True, slots=True)
class AccountMessage:
    """A message or event for an account; the base of every kind and itself any unknown kind."""

    to_user: str
    from_user: str
    create_time: int
    msg_type: str
    fields: dict[str, Any] = field(repr=False)

    @property
    def event(self) -> str | None:
        return optional_text(self.fields, "Event") if self.msg_type == "event" else None

    @property
    def msg_id(self) -> str | None:
        """WeChat's id of a user message (events have none; job-finish events carry ``MsgID``)."""
        return optional_text(self.fields, "MsgId")

    @property
    def kind(self) -> str:
        """``text``, ``image``, ... for messages; ``event:<Event>`` for events."""
        return f"event:{self.event}" if self.msg_type == "event" else self.msg_type

    @property
    def delivery_key(self) -> str:
        """What stays the same when WeChat re-sends this message: its MsgId; for an event, the
        sender and CreateTime (WeChat's rule), with the event's name."""
        if self.msg_id:
            return f"msg:{self.msg_id}"
        return f"event:{self.from_user}:{self.create_time}:{self.event or self.msg_type}"


@dataclass(frozen=True, slots=True)
class TextMessage(AccountMessage):
    content: str | None = None


@dataclass(frozen=True, slots=True)
class ImageMessage(AccountMessage):
    pic_url: str | None = None
    media_id: str | None = None


@dataclass(frozen=True, slots=True)
class VoiceMessage(AccountMessage):
    media_id: str | None = None
    format: str | None = None
    recognition: str | None = None


@dataclass(frozen=True, slots=True)
class VideoMessage(AccountMessage):
    """``video`` and ``shortvideo``."""

    media_id: str | None = None
    thumb_media_id: str | None = None


@dataclass(frozen=True, slots=True)
class LocationMessage(AccountMessage):
    latitude: str | None = None  # Location_X
    longitude: str | None = None  # Location_Y
    scale: str | None = None
    label: str | None = None


@dataclass(frozen=True, slots=True)
class LinkMessage(AccountMessage):
    title: str | None = None
    description: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Event(AccountMessage):
    """subscribe, unsubscribe, SCAN, CLICK, VIEW and any event without more specific fields."""

    event_key: str | None = None
    ticket: str | None = None


@dataclass(frozen=True, slots=True)
class LocationEvent(AccountMessage):
    latitude: str | None = None
    longitude: str | None = None
    precision: str | None = None


@dataclass(frozen=True, slots=True)
class JobFinishEvent(AccountMessage):
    """TEMPLATESENDJOBFINISH and MASSSENDJOBFINISH: the job's id (``MsgID``) and its status."""

    job_id: str | None = None
    status: str | None = None


@dataclass(frozen=True, slots=True)
class TempSessionEvent(AccountMessage):
    """user_enter_tempsession: a user opened a Mini Program's customer-service session."""

    session_from: str | None = None


@dataclass(frozen=True, slots=True)
class AuditEvent(AccountMessage):
    """weapp_audit_success / fail / delay: the result of a Mini Program code audit."""

    result: str = ""  # success | fail | delay
    result_time: int | None = None  # SuccTime, FailTime or DelayTime
    reason: str | None = None
    screenshots: tuple[str, ...] = ()  # ScreenShot media ids, "|"-separated on the wire


@dataclass(frozen=True, slots=True)
class NicknameAuditEvent(AccountMessage):
    """wxa_nickname_audit: the result of a Mini Program's nickname change (ret 2 fail, 3 success)."""

    ret: str | None = None
    nickname: str | None = None
    reason: str | None = None


MESSAGE_TYPES = ("text", "image", "voice", "video", "shortvideo", "location", "link")
AUDIT_EVENTS = {"weapp_audit_success": "success", "weapp_audit_fail": "fail", "weapp_audit_delay": "delay"}
_AUDIT_TIME = {"success": "SuccTime", "fail": "FailTime", "delay": "DelayTime"}


def _int_or_none(value: str | None) -> int | None:
    """A unix time WeChat writes in ASCII digits; anything else is None. (``str.isdigit`` alone
    lets through "²", "①" and digit strings past ``int``'s 4300-digit limit: ValueError.)"""
    if not value or len(value) > 19 or not value.isascii() or not value.isdigit():
        return None
    number = int(value)
    return number if number < 2**63 else None  # a 64-bit time, as WeChat writes them


def parse_account_message(plaintext: bytes | str) -> AccountMessage:
    """A decrypted delivery to the message URL as its typed kind (``AccountMessage`` when unknown)."""
    fields = parse_xml(plaintext)
    base = (
        required_text(fields, "ToUserName"),
        required_text(fields, "FromUserName"),
        required_integer(fields, "CreateTime"),
        required_text(fields, "MsgType"),
        fields,
    )
    msg_type = base[3]

    def text(name: str) -> str | None:
        return optional_text(fields, name)

    match msg_type:
        case "text":
            return TextMessage(*base, content=text("Content"))
        case "image":
            return ImageMessage(*base, pic_url=text("PicUrl"), media_id=text("MediaId"))
        case "voice":
            return VoiceMessage(
                *base, media_id=text("MediaId"), format=text("Format"), recognition=text("Recognition")
            )
        case "video" | "shortvideo":
            return VideoMessage(*base, media_id=text("MediaId"), thumb_media_id=text("ThumbMediaId"))
        case "location":
            return LocationMessage(
                *base,
                latitude=text("Location_X"),
                longitude=text("Location_Y"),
                scale=text("Scale"),
                label=text("Label"),
            )
        case "link":
            return LinkMessage(*base, title=text("Title"), description=text("Description"), url=text("Url"))
        case "event":
            return _event(base, fields)
    return AccountMessage(*base)


def _event(base: tuple[str, str, int, str, dict[str, Any]], fields: dict[str, Any]) -> AccountMessage:
    event = optional_text(fields, "Event")
    if not event:
        raise XmlError("event without <Event>")

    def text(name: str) -> str | None:
        return optional_text(fields, name)

    if event in AUDIT_EVENTS:
        result = AUDIT_EVENTS[event]
        shots = text("ScreenShot") or ""
        return AuditEvent(
            *base,
            result=result,
            result_time=_int_or_none(text(_AUDIT_TIME[result])),
            reason=text("Reason"),
            screenshots=tuple(s for s in shots.split("|") if s),
        )
    match event:
        case "LOCATION":
            return LocationEvent(
                *base, latitude=text("Latitude"), longitude=text("Longitude"), precision=text("Precision")
            )
        case "TEMPLATESENDJOBFINISH" | "MASSSENDJOBFINISH":
            return JobFinishEvent(*base, job_id=text("MsgID"), status=text("Status"))
        case "user_enter_tempsession":
            return TempSessionEvent(*base, session_from=text("SessionFrom"))
        case "wxa_nickname_audit":
            return NicknameAuditEvent(
                *base, ret=text("ret"), nickname=text("nickname"), reason=text("reason")
            )
    return Event(*base, event_key=text("EventKey"), ticket=text("Ticket"))
