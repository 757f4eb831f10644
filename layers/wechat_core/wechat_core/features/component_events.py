"""The authorization-event URL: verify, decrypt and dispatch WeChat's component pushes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from wechat_core import clock, runtime
from wechat_core.errors import AppIdMismatch, BadRequest, Conflict, ReplayedNonce, WeChatCodeInvalid
from wechat_core.features import onboarding
from wechat_core.protocol import push
from wechat_core.protocol.ids import is_appid
from wechat_core.protocol.messages import (
    Authorized,
    ComponentEvent,
    ComponentVerifyTicket,
    FastRegister,
    Unauthorized,
    parse_component_event,
)
from wechat_core.store import keys
from wechat_core.store.claims import Claim

logger = Logger(child=True)
metrics = Metrics()


def handle_component_push(query: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """Process one push to the authorization-event URL; raises a 4xx ``ServiceError`` on bad input.

    Every push is safe to process again (the ticket write and the authorization writes are
    conditional on ``CreateTime``; a re-sent ``authorized`` push exchanges its code again only while
    the exchange has not completed), so a ticket push costs one write and nothing else. Pushes
    that reach WeChat's API also write their delivery key (``timestamp`` + ``nonce``, one
    PutItem): a re-send goes on, while another signed message under a used nonce is refused.
    """
    conf = runtime.settings()
    component_appid = conf.component_appid
    opened = push.open_delivery(query, body, runtime.message_cryptos(), conf.timestamp_tolerance_seconds)
    delivery = opened.delivery
    if opened.previous:
        old_keys_used()
    event = parse_component_event(opened.plaintext)
    if event.app_id != component_appid:
        raise AppIdMismatch
    named = getattr(event, "authorizer_appid", None)
    if named is not None and not is_appid(named):  # it becomes part of our keys
        raise BadRequest("malformed AuthorizerAppid")
    if not isinstance(event, ComponentVerifyTicket):
        claim = runtime.store().deliveries.claim(
            "component-push",
            f"{delivery.timestamp}:{delivery.nonce}",
            delivery.msg_signature.lower(),
            clock.now(),
            delivery_key_seconds(conf.timestamp_tolerance_seconds),
        )
        if claim is Claim.CONFLICT:
            raise ReplayedNonce
    return dispatch(event)


def old_keys_used() -> None:
    """A delivery under a rotation's previous keys: counted, so the operator knows when none come
    any more and the previous keys can leave the secret."""
    metrics.add_metric("OldKeyUsed", MetricUnit.Count, 1)
    logger.info("delivery accepted under the previous message keys (rotation grace period)")


def delivery_key_seconds(tolerance: int) -> int:
    """Longer than any timestamp we accept, so a nonce reused inside the window is always caught."""
    return 2 * tolerance + 60


def dispatch(event: ComponentEvent) -> dict[str, Any]:
    store = runtime.store()
    now = int(clock.now())
    outcome: dict[str, Any] = {"info_type": event.info_type, "create_time": event.create_time}
    match event:
        case ComponentVerifyTicket():
            stored = store.tickets.save(event.ticket, event.create_time, now)
            outcome["stored"] = stored
            metrics.add_metric("TicketStored" if stored else "TicketIgnoredOlder", MetricUnit.Count, 1)
        case Authorized():
            code_hash = onboarding.code_hash(event.authorization_code)
            changed = store.authorizers.record_authorized(
                event.authorizer_appid, event.info_type, event.create_time, code_hash, now
            )
            outcome |= {"authorizer_appid": event.authorizer_appid, "applied": changed}
            # A push older than what the item already knows (a later revocation, or an activation
            # at the redirect) must not exchange its code and re-activate.
            outcome["exchanged"] = changed and _exchange(event.authorization_code, event.authorizer_appid)
            metrics.add_metric(f"AuthorizationEvent.{event.info_type}", MetricUnit.Count, 1)
        case Unauthorized():
            changed = store.authorizers.revoke(event.authorizer_appid, event.create_time, now)
            if changed:
                # After the revocation: a refresh in flight can no longer store a ticket either.
                store.tokens.drop(keys.jsapi_ticket_sk(event.authorizer_appid))
            outcome |= {"authorizer_appid": event.authorizer_appid, "applied": changed}
            metrics.add_metric("AuthorizationEvent.unauthorized", MetricUnit.Count, 1)
        case FastRegister():
            outcome |= {"status": event.status, "registered_appid": event.registered_appid}
            if event.status == 0 and event.auth_code:
                outcome["exchanged"] = _exchange(event.auth_code, event.registered_appid)
            metrics.add_metric("FastRegisterEvent", MetricUnit.Count, 1)
        case _:
            metrics.add_metric("UnknownComponentEvent", MetricUnit.Count, 1)
            outcome["ignored"] = True
    # Tickets arrive every 10 minutes and are counted by the metric above; authorization events are
    # rare and each is worth a line.
    if isinstance(event, ComponentVerifyTicket):
        logger.debug("component push processed", extra=outcome)
    else:
        logger.info("component push processed", extra=outcome)
    return outcome


def _exchange(code: str, authorizer_appid: str | None) -> bool:
    """Exchange a pushed authorization code. A code WeChat refuses is logged and answered ``success``
    (retrying cannot help); anything transient raises, so WeChat re-sends the push."""
    try:
        onboarding.complete(code, authorizer_appid=authorizer_appid)
    except (WeChatCodeInvalid, Conflict) as error:
        metrics.add_metric("AuthorizationCodeRefused", MetricUnit.Count, 1)
        logger.error("pushed authorization code not exchanged", extra={"reason": error.reason})
        return False
    return True
