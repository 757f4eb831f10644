"""Publishing what WeChat delivered for an account to the platform's EventBridge bus.

One ``PutEvents`` entry per message: ``Source`` names the platform
(``wechat.component.<component appid>``), ``DetailType`` tells a message from an event, and
``Detail`` carries the message as WeChat sent it (rules match on ``detail.authorizer_appid``;
``Resources`` is for ARNs and stays empty). EventBridge answers 200 even when it refuses
an entry (``FailedEntryCount``); that is a failure here too, so the caller can make WeChat
re-send (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from wechat_core.errors import ServiceUnavailable

DETAIL_TYPE_MESSAGE = "WeChat message"
DETAIL_TYPE_EVENT = "WeChat event"


def source(component_appid: str) -> str:
    return f"wechat.component.{component_appid}"


class PublishFailed(ServiceUnavailable):
    reason = "could not publish the message; WeChat will send it again"


class EventBus:
    def __init__(self, client: Callable[[], Any], bus_name: str, component_appid: str) -> None:
        self._client = client
        self.bus_name = bus_name
        self.source = source(component_appid)

    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        """One entry; raises ``PublishFailed`` when EventBridge did not take it."""
        if not self.bus_name:
            raise PublishFailed("no event bus is configured (EVENT_BUS_NAME)")
        entry = {
            "EventBusName": self.bus_name,
            "Source": self.source,
            "DetailType": detail_type,
            "Detail": json.dumps(detail, ensure_ascii=False, separators=(",", ":")),
        }
        try:
            answer = self._client().put_events(Entries=[entry])
        except Exception as error:  # botocore's errors: throttling, network, service
            raise PublishFailed from error
        if answer.get("FailedEntryCount"):
            raise PublishFailed
