"""The release queue: JSON messages to SQS, ten per request.

``SendMessageBatch`` answers 200 with a ``Failed`` list when it refuses entries
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html):
those are a failure here too, so a caller never believes a message is queued when it is not.
A delay (at most 900 s, SQS's limit) puts work off: rate limits are waited out this way instead
of failing a message.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from wechat_core.errors import ServiceUnavailable

MAX_DELAY_SECONDS = 900
BATCH = 10


class QueueUnavailable(ServiceUnavailable):
    reason = "could not queue the work; try again"


class WorkQueue:
    def __init__(self, client: Callable[[], Any], queue_url: str) -> None:
        self._client = client
        self.queue_url = queue_url

    def send(self, messages: Sequence[Mapping[str, Any]], delay_seconds: int = 0) -> None:
        if not self.queue_url:
            raise QueueUnavailable("no release queue is configured (RELEASE_QUEUE_URL)")
        delay = max(0, min(int(delay_seconds), MAX_DELAY_SECONDS))
        for start in range(0, len(messages), BATCH):
            entries = [
                {
                    "Id": str(n),
                    "MessageBody": json.dumps(m, separators=(",", ":"), sort_keys=True),
                    "DelaySeconds": delay,
                }
                for n, m in enumerate(messages[start : start + BATCH])
            ]
            try:
                answer = self._client().send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except Exception as error:  # botocore's errors: throttling, network, service
                raise QueueUnavailable from error
            if answer.get("Failed"):
                raise QueueUnavailable
