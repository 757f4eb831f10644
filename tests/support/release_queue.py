"""Playing Lambda's SQS event source for the release worker: receive from the release queue on
moto, invoke the real handler with the batch, delete what it did not report as failed (a failed
message comes back at once: the test queues have no visibility timeout, and move to the
dead-letter queue after five receives, as the template's)."""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import boto3

from devtools.events import LambdaContext
from devtools.project import REGION
from devtools.release_poller import sqs_event
from tests.support.lambdas import load_function


def _sqs() -> Any:
    return boto3.client("sqs", region_name=REGION)


def invoke(event: dict[str, Any]) -> dict[str, Any]:
    handler = load_function("functions/release_worker").lambda_handler
    result: dict[str, Any] = handler(event, LambdaContext(function_name="ReleaseWorkerFunction"))
    return result


def receive(queue_url: str | None = None, limit: int = 10) -> list[dict[str, Any]]:
    url = queue_url or os.environ["RELEASE_QUEUE_URL"]
    answer = _sqs().receive_message(QueueUrl=url, MaxNumberOfMessages=limit, WaitTimeSeconds=0)
    return list(answer.get("Messages", []))


def run_batch(messages: list[dict[str, Any]], queue_url: str | None = None) -> list[str]:
    """Invoke the worker with ``messages`` and delete the ones it processed; returns the ids it
    reported as failed (they come back)."""
    url = queue_url or os.environ["RELEASE_QUEUE_URL"]
    result = invoke(sqs_event(messages, url))
    failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
    done = [m for m in messages if m["MessageId"] not in failed]
    if done:
        _sqs().delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done)],
        )
    return sorted(failed)


def drain(max_batches: int = 10_000) -> int:
    """Run the worker until the queue is empty; returns how many messages it took."""
    taken = 0
    for _ in range(max_batches):
        messages = receive()
        if not messages:
            return taken
        taken += len(messages)
        run_batch(messages)
    raise AssertionError("the release queue never emptied")


def pending() -> list[dict[str, Any]]:
    """The messages waiting (received and left in the queue, visible again at once)."""
    url = os.environ["RELEASE_QUEUE_URL"]
    seen = receive(url)
    return [json.loads(m["Body"]) for m in seen]


def send(message: dict[str, Any]) -> None:
    _sqs().send_message(QueueUrl=os.environ["RELEASE_QUEUE_URL"], MessageBody=json.dumps(message))


def dead_letters(dlq_url: str) -> list[dict[str, Any]]:
    answer = _sqs().receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return [json.loads(m["Body"]) for m in answer.get("Messages", [])]


def scheduled_run() -> dict[str, Any]:
    return invoke(
        {"id": str(uuid.uuid4()), "source": "aws.scheduler", "detail-type": "Scheduled Event", "detail": {}}
    )


def delete(messages: list[dict[str, Any]]) -> None:
    if messages:
        _sqs().delete_message_batch(
            QueueUrl=os.environ["RELEASE_QUEUE_URL"],
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)],
        )


def send_all(messages: list[dict[str, Any]]) -> None:
    for message in messages:
        send(message)
