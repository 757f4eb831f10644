"""The release worker's event source in local runs: what Lambda's SQS event source mapping does for
``ReleaseWorkerFunction`` when deployed (template.yaml: batches of up to 10, ``ReportBatchItemFailures``).

    python -m devtools.release_poller --queue-url URL --sqs-endpoint URL --lambda-url URL

A loop, one batch at a time: long-poll the release queue on moto (``WaitTimeSeconds``: an empty
queue costs one request every few seconds, never a busy loop), invoke the function with the batch
as Lambda builds it (``Records``) through ``sam local start-lambda`` (the function's warm
container), then delete the messages the answer does not name in ``batchItemFailures``. A failed
message stays and comes back after the queue's visibility timeout; after five receives SQS moves it
to the dead-letter queue (the queue's redrive policy, as the template's). An invocation that fails
as a whole (``X-Amz-Function-Error``, or no answer) deletes nothing, as Lambda does.

SIGTERM or SIGINT stops it: at once while it waits for messages, after the batch in hand otherwise.
``devtools/local_stack.py`` runs it as a child of the local stack (log ``.local/logs/worker.log``).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from types import FrameType
from typing import Any

import boto3
import requests

from devtools.project import REGION, local_parameters

FUNCTION = "ReleaseWorkerFunction"
BATCH_SIZE = 10  # template.yaml's BatchSize
WAIT_SECONDS = 5  # the long poll: how long one receive waits for a message (and how long a stop may take)
INVOKE_TIMEOUT = 180  # the worker's 60 s, plus a container that has to start
ERROR_PAUSE = 2.0  # after a failed receive or invocation, so a fault never makes it spin


def queue_arn(url: str) -> str:
    """The ARN of the queue at ``url`` (``…/<account>/<name>``), for the records' ``eventSourceARN``."""
    account, name = url.rstrip("/").split("/")[-2:]
    return f"arn:aws:sqs:{REGION}:{account}:{name}"


def sqs_event(messages: Sequence[Mapping[str, Any]], queue_url: str) -> dict[str, Any]:
    """The event Lambda's SQS event source gives the function for received ``messages``."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": dict(m.get("Attributes") or {}),
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn(queue_url),
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def describe(messages: list[dict[str, Any]]) -> str:
    """``commit x3, submit x1``: the steps in a batch (the bodies are the service's JSON messages)."""
    steps: Counter[str] = Counter()
    for message in messages:
        try:
            steps[str(json.loads(message["Body"]).get("step", "?"))] += 1
        except (ValueError, AttributeError):
            steps["not JSON"] += 1
    return ", ".join(f"{step} x{n}" for step, n in sorted(steps.items()))


class _Stop(BaseException):  # not an Exception: nothing between here and the signal catches it
    pass


class Poller:
    def __init__(
        self,
        queue_url: str,
        *,
        sqs_endpoint: str,
        lambda_url: str,
        function: str = FUNCTION,
        wait_seconds: int = WAIT_SECONDS,
        log: Callable[[str], None] = print,
    ) -> None:
        local = local_parameters()
        self.sqs: Any = boto3.client(
            "sqs",
            endpoint_url=sqs_endpoint,
            region_name=REGION,
            aws_access_key_id=local.get("AWS_ACCESS_KEY_ID", "local"),
            aws_secret_access_key=local.get("AWS_SECRET_ACCESS_KEY", "local"),
        )
        self.queue_url = queue_url
        self.invoke_url = f"{lambda_url.rstrip('/')}/2015-03-31/functions/{function}/invocations"
        self.function = function
        self.wait_seconds = wait_seconds
        self.log = log
        self.busy = False  # a batch in hand: a stop waits for it
        self.stopping = False
        self.batches = 0

    def stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        if not self.busy:
            raise _Stop

    def receive(self) -> list[dict[str, Any]]:
        answer = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=BATCH_SIZE,
            WaitTimeSeconds=self.wait_seconds,
            AttributeNames=["All"],
        )
        return list(answer.get("Messages", []))

    def invoke(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """The function's answer; None when the invocation failed as a whole."""
        answer = requests.post(self.invoke_url, data=json.dumps(event), timeout=INVOKE_TIMEOUT)
        if answer.status_code != 200 or answer.headers.get("X-Amz-Function-Error"):
            self.log(f"  the invocation failed ({answer.status_code}): {answer.text[:300]}")
            return None
        result = answer.json()
        return result if isinstance(result, dict) else None

    def run_batch(self, messages: list[dict[str, Any]]) -> None:
        started = time.monotonic()
        result = self.invoke(sqs_event(messages, self.queue_url))
        seconds = time.monotonic() - started
        what = f"batch of {len(messages)} ({describe(messages)}) -> {self.function} in {seconds:.2f}s"
        if result is None:
            self.log(f"{what}: failed, every message comes back after the visibility timeout")
            time.sleep(ERROR_PAUSE)
            return
        failed = {str(f.get("itemIdentifier")) for f in result.get("batchItemFailures") or []}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done)],
            )
        left = f", {len(failed)} reported failed (they come back)" if failed else ""
        self.log(f"{what}: {len(done)} done{left}")

    def run(self) -> int:
        self.log(f"polling {self.queue_url} for {self.function} ({self.invoke_url})")
        while not self.stopping:
            try:
                messages = self.receive()
            except _Stop:
                break
            except Exception as error:  # moto unreachable for a moment: say so, wait, go on
                self.log(f"receive failed: {error}")
                time.sleep(ERROR_PAUSE)
                continue
            if not messages:
                continue
            self.busy = True
            try:
                self.run_batch(messages)
                self.batches += 1
            except requests.RequestException as error:
                self.log(f"invoking {self.function} failed: {error}; the batch comes back")
                time.sleep(ERROR_PAUSE)
            finally:
                self.busy = False
        self.log(f"stopped after {self.batches} batch(es)")
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.release_poller", description=__doc__)
    parser.add_argument("--queue-url", required=True, help="the release queue")
    parser.add_argument("--sqs-endpoint", required=True, help="moto's server")
    parser.add_argument("--lambda-url", required=True, help="sam local start-lambda")
    parser.add_argument("--function", default=FUNCTION)
    parser.add_argument("--wait-seconds", type=int, default=WAIT_SECONDS)
    args = parser.parse_args(argv)

    def log(line: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)

    poller = Poller(
        args.queue_url,
        sqs_endpoint=args.sqs_endpoint,
        lambda_url=args.lambda_url,
        function=args.function,
        wait_seconds=args.wait_seconds,
        log=log,
    )
    signal.signal(signal.SIGTERM, poller.stop)
    signal.signal(signal.SIGINT, poller.stop)
    try:
        return poller.run()
    except _Stop:
        log(f"stopped after {poller.batches} batch(es)")
        return 0


if __name__ == "__main__":
    sys.exit(main())
