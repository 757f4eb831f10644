"""The message URL: messages and events of authorized accounts, onto the EventBridge bus once each.

Checks first, as for the component push (``protocol.push``): signature in constant time, the
timestamp window, body cap, XML without entities, AES with the platform's key and the
platform's appid inside. Then:

1. WeChat's full-network release test (``protocol.release_test``), for its test accounts only:
   answered as the test expects; nothing stored, nothing published.
2. An account without an active authorization: answered ``success``, counted, not published.
3. Otherwise the message's delivery key is written (one conditional PutItem; WeChat's re-send
   finds it and is answered ``success`` without publishing again), the message is published
   (one PutEvents), and a failed publish removes the key and answers 503, so WeChat re-sends it
   and nothing is lost.

Per accepted message: one write and one PutEvents, plus a read of the authorization that the
process remembers for ``authorization_memory_seconds`` once it has seen it active.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from wechat_core import clock, runtime
from wechat_core.bus import DETAIL_TYPE_EVENT, DETAIL_TYPE_MESSAGE
from wechat_core.errors import BadRequest, Forbidden, ServiceError
from wechat_core.features import component_events, onboarding, releases
from wechat_core.features.tokens import AuthorizerToken
from wechat_core.protocol import push, release_test
from wechat_core.protocol.account_messages import AccountMessage, AuditEvent, parse_account_message
from wechat_core.protocol.ids import is_appid
from wechat_core.protocol.messages import build_xml, encrypted_envelope
from wechat_core.store.claims import Claim
from wechat_core.wechat.client import deadline

logger = Logger(child=True)
metrics = Metrics()

# WeChat waits 5 s for an answer; the release test's API reply must be sent within that too.
RELEASE_TEST_BUDGET_SECONDS = 4.0
# WeChat re-sends for about 15 s (3 tries 5 s apart); keys are kept far longer than that.
DELIVERY_KEY_SECONDS = 3600
DELIVERY_KEY_RELEASE_ATTEMPTS = 3


class WrongAccount(Forbidden):
    reason = "message is for another account than the URL names"


@dataclass(frozen=True, slots=True)
class Answer:
    """What the route sends back: ``success``, empty, or an encrypted passive reply (XML)."""

    body: str
    xml: bool = False


SUCCESS = Answer("success")


def handle_account_message(appid: str, query: Mapping[str, str], body: bytes) -> Answer:
    """Process one delivery to ``/wechat/authorizers/{appid}/messages``; raises a 4xx
    ``ServiceError`` on bad input and ``PublishFailed`` (503) when the bus did not take it."""
    if not is_appid(appid):
        raise BadRequest("malformed appid in the path")
    conf = runtime.settings()
    opened = push.open_delivery(query, body, runtime.message_cryptos(), conf.timestamp_tolerance_seconds)
    if opened.previous:
        component_events.old_keys_used()
    delivery, crypto = opened.delivery, opened.crypto  # a reply goes out under the keys it came with
    message = parse_account_message(opened.plaintext)
    if delivery.envelope.to_user_name and delivery.envelope.to_user_name != message.to_user:
        raise BadRequest("envelope and message name different accounts")

    test_case = release_test.case(appid, message)
    if isinstance(test_case, release_test.PassiveText):
        metrics.add_metric("ReleaseTestPassiveReply", MetricUnit.Count, 1)
        now = int(clock.now())
        reply = build_xml(
            {
                "ToUserName": message.from_user,
                "FromUserName": message.to_user,
                "CreateTime": now,
                "MsgType": "text",
                "Content": test_case.content,
            }
        )
        return Answer(encrypted_envelope(crypto, reply, str(now), delivery.nonce), xml=True)
    if isinstance(test_case, release_test.CompleteCode):
        _complete_release_test(appid, message, test_case)
        return Answer("")

    if not _active(appid, message):
        metrics.add_metric("MessageForInactiveAccount", MetricUnit.Count, 1)
        logger.info("message for an account without an active authorization", extra=_summary(appid, message))
        return SUCCESS

    deliveries = runtime.store().deliveries
    key = f"{appid}:{message.delivery_key}"
    if deliveries.claim("message", key, "", clock.now(), DELIVERY_KEY_SECONDS) is not Claim.FIRST:
        metrics.add_metric("MessageRepeated", MetricUnit.Count, 1)
        return SUCCESS
    try:
        if isinstance(message, AuditEvent):
            # Before publishing: a failure here makes WeChat re-send, and applying it again is harmless.
            releases.on_audit_event(appid, message)
        runtime.event_bus().publish(
            DETAIL_TYPE_EVENT if message.msg_type == "event" else DETAIL_TYPE_MESSAGE, detail(appid, message)
        )
    except Exception:  # the bus refused, or the release store or queue failed
        metrics.add_metric("MessagePublishFailed", MetricUnit.Count, 1)
        logger.error("message not processed; WeChat will re-send it", extra=_summary(appid, message))
        _forget_delivery(key, appid, message)  # WeChat's re-send is processed instead
        raise
    metrics.add_metric("MessagePublished", MetricUnit.Count, 1)
    if isinstance(message, AuditEvent):
        _record_audit(appid, message)
    return SUCCESS


def _forget_delivery(key: str, appid: str, message: AccountMessage) -> None:
    """Remove the key of a delivery that was not published. A key left behind makes WeChat's
    re-sends look published, and the message is lost: so the delete is tried again (each attempt
    after botocore's own retries), and if it still fails, that is counted and logged."""
    for attempt in range(DELIVERY_KEY_RELEASE_ATTEMPTS):
        try:
            runtime.store().deliveries.release("message", key)
            return
        except Exception:
            if attempt == DELIVERY_KEY_RELEASE_ATTEMPTS - 1:
                metrics.add_metric("DeliveryKeyNotReleased", MetricUnit.Count, 1)
                logger.exception(
                    "delivery key of an unpublished message not removed: WeChat's re-sends of it "
                    "will be answered without publishing",
                    extra=_summary(appid, message),
                )


def detail(appid: str, message: AccountMessage) -> dict[str, Any]:
    """The EventBridge ``Detail`` of a message: who, what, when, and every field WeChat sent."""
    return {
        "component_appid": runtime.settings().component_appid,
        "authorizer_appid": appid,
        "account": message.to_user,
        "type": message.kind,
        "msg_type": message.msg_type,
        "event": message.event,
        "from": message.from_user,
        "create_time": message.create_time,
        "msg_id": message.msg_id,
        "fields": message.fields,
    }


def _summary(appid: str, message: AccountMessage) -> dict[str, Any]:
    # No content, no sender: a log line says what kind of thing arrived for whom, nothing more.
    return {"authorizer_appid": appid, "type": message.kind, "create_time": message.create_time}


def _active(appid: str, message: AccountMessage) -> bool:
    """Whether the account has an active authorization (remembered a few seconds once seen), and
    the message is for it: a delivery for account A replayed to B's URL names A's user name."""
    memo = runtime.account_memo()
    now = time.monotonic()
    remembered = memo.get(appid)
    if remembered is not None and remembered[0] > now:
        user_name = remembered[1]
    else:
        item = runtime.store().authorizers.get(appid, consistent=False)
        if not item or item.get("status") != "active":
            memo.pop(appid, None)
            return False
        info = item.get("info") or {}
        user_name = str(info.get("user_name") or "") or None
        memory = runtime.settings().authorization_memory_seconds
        if memory > 0:
            memo[appid] = (now + memory, user_name)
    if user_name and user_name != message.to_user:
        raise WrongAccount
    return True


def _record_audit(appid: str, event: AuditEvent) -> None:
    """The last audit result on the authorization (the release pipeline reads it). Published
    already: a failure here is logged, not answered with an error."""
    audit = {
        "result": event.result,
        "reason": event.reason,
        "screenshots": list(event.screenshots),
        "result_time": event.result_time,
        "create_time": event.create_time,
    }
    try:
        runtime.store().authorizers.record_audit(appid, audit, clock.now())
    except Exception:
        metrics.add_metric("AuditNotRecorded", MetricUnit.Count, 1)
        logger.exception("audit result published but not recorded", extra={"authorizer_appid": appid})


def _complete_release_test(appid: str, message: AccountMessage, test_case: release_test.CompleteCode) -> None:
    """Exchange the test's code (through the same completion as every authorization, so a code the
    ``authorized`` push already exchanged is not exchanged again) and send the reply with that
    account's token, inside WeChat's 5 seconds. Failures are logged and the answer stays empty:
    WeChat's test then reports what is missing."""
    metrics.add_metric("ReleaseTestApiReply", MetricUnit.Count, 1)
    try:
        with deadline(clock.now() + RELEASE_TEST_BUDGET_SECONDS):
            authorization = onboarding.complete(test_case.code, authorizer_appid=appid)
            token = AuthorizerToken(authorization.authorizer_appid)
            runtime.account_api().send_text(message.from_user, test_case.reply, token)
    except ServiceError as error:  # WeChat's errors, a lease past the deadline, a refused code
        metrics.add_metric("ReleaseTestApiReplyFailed", MetricUnit.Count, 1)
        logger.error(
            "release test: reply through the API not sent",
            extra={"authorizer_appid": appid, "reason": error.reason},
        )
