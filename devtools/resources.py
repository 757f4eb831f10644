"""The AWS side of a local run, on moto's server: the table made from template.yaml and the secret,
one way for the tests, the benchmarks and the local stack; and moto's server on a loopback port.

moto's server always runs through ``devtools.moto_launcher`` (DynamoDB serialized, see there).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import requests
from wechat_core import bus

from devtools import moto_launcher, template
from devtools.ports import free_port
from devtools.project import REGION, ROOT

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

# What the service reads from its secret (COMPONENT_SECRET_ID).
SECRET_KEYS = ("appsecret", "token", "encoding_aes_key")


def create_table(dynamodb: DynamoDBClient, name: str) -> None:
    """A table made from template.yaml's definition, with its time-to-live attribute."""
    dynamodb.create_table(TableName=name, **template.table_definition())
    dynamodb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": template.ttl_attribute()}
    )


def create_secret(secrets: SecretsManagerClient, name: str, platform: dict[str, str]) -> None:
    """The service's secret: the platform's appsecret, token and encoding_aes_key (nothing else)."""
    secrets.create_secret(Name=name, SecretString=json.dumps({k: platform[k] for k in SECRET_KEYS}))


def queue_name(bus_name: str) -> str:
    """The queue ``create_bus_and_queue`` subscribes to ``bus_name``."""
    return f"{bus_name}-messages"


def create_bus_and_queue(events: Any, sqs: Any, bus_name: str, component_appid: str) -> str:
    """The service's event bus, and a queue that receives everything published on it (the sample
    rule the README shows, for one platform). Returns the queue's URL."""
    events.create_event_bus(Name=bus_name)
    queue_url: str = sqs.create_queue(QueueName=queue_name(bus_name))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    rule = f"{bus_name}-to-queue"
    pattern = {"source": [bus.source(component_appid)]}
    events.put_rule(Name=rule, EventBusName=bus_name, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=rule, EventBusName=bus_name, Targets=[{"Id": "queue", "Arn": queue_arn}])
    return queue_url


RELEASE_MAX_RECEIVES = 5  # as template.yaml's ReleaseQueue redrive policy
MOTO_ACCOUNT_ID = "123456789012"  # the account moto's server makes everything in (its default)


def queue_url(endpoint: str, name: str) -> str:
    """The URL moto's server at ``endpoint`` gives the queue ``name`` (its account, that host)."""
    return f"{endpoint.rstrip('/')}/{MOTO_ACCOUNT_ID}/{name}"


def create_release_queues(sqs: Any, name: str, visibility_timeout: int = 0) -> tuple[str, str]:
    """The release queue and its dead-letter queue (after ``RELEASE_MAX_RECEIVES`` receives), as
    the template makes them; returns both URLs. Tests take a failed message back at once (0 s)."""
    dead: str = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": RELEASE_MAX_RECEIVES})
    attributes = {"RedrivePolicy": redrive, "VisibilityTimeout": str(visibility_timeout)}
    queue: str = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return queue, dead


def receive_all(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every event waiting in the queue (EventBridge's envelope, ``detail`` parsed), removed from it."""
    events: list[dict[str, Any]] = []
    while True:
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = answer.get("Messages", [])
        if not messages:
            return events
        for message in messages:
            events.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


@dataclass
class Resources:
    table_name: str
    secret_name: str
    bus_name: str = ""
    queue_url: str = ""
    release_queue_url: str = ""
    release_dlq_url: str = ""

    @property
    def dynamodb(self) -> Any:
        return boto3.client("dynamodb", region_name=REGION)

    def items(self) -> list[dict[str, Any]]:
        """Every item in the table (tests only; the service never scans)."""
        paginator = self.dynamodb.get_paginator("scan")
        return [i for page in paginator.paginate(TableName=self.table_name) for i in page["Items"]]

    def published(self) -> list[dict[str, Any]]:
        """What the service published on the bus since last asked (through the subscribed queue)."""
        return receive_all(boto3.client("sqs", region_name=REGION), self.queue_url)

    def snapshot(self) -> list[dict[str, Any]]:
        """The table's items in a stable order, to assert that nothing changed."""
        return sorted(self.items(), key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def create_resources(secret: dict[str, str], component_appid: str = "") -> Resources:
    """A table and a secret of their own (random names), through this process's AWS environment
    (``aws_environment``); with ``component_appid``, an event bus and a queue subscribed to it, and
    the release queue with its dead-letter queue, too."""
    suffix = uuid.uuid4().hex[:10]
    resources = Resources(f"wechat-test-{suffix}", f"wechat-component-{suffix}")
    create_table(boto3.client("dynamodb", region_name=REGION), resources.table_name)
    create_secret(boto3.client("secretsmanager", region_name=REGION), resources.secret_name, secret)
    if component_appid:
        resources.bus_name = f"wechat-bus-{suffix}"
        resources.queue_url = create_bus_and_queue(
            boto3.client("events", region_name=REGION),
            boto3.client("sqs", region_name=REGION),
            resources.bus_name,
            component_appid,
        )
        resources.release_queue_url, resources.release_dlq_url = create_release_queues(
            boto3.client("sqs", region_name=REGION), f"wechat-releases-{suffix}"
        )
    return resources


class MotoServer:
    """moto's standalone server in its own process, on a loopback port, with DynamoDB serialized
    (devtools/moto_launcher.py)."""

    def __init__(self, switch_interval: float | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Checked here too: the server's own refusal would go to DEVNULL and read "did not start".
        moto_launcher.check()
        argv = [sys.executable, "-m", "devtools.moto_launcher", "-H", "127.0.0.1", "-p", str(self.port)]
        if switch_interval is not None:
            argv += ["--switch-interval", str(switch_interval)]
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,  # where -m finds devtools, whichever directory pytest or the bench ran from
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until_serving(self.process, self.url, "moto server")

    def stop(self) -> None:
        stop_process(self.process)


def wait_until_serving(process: subprocess.Popen[bytes], url: str, what: str) -> None:
    """Until a moto server process answers at ``url`` (a bounded start-up poll); stopped and an
    error if it exits or does not answer within a minute."""
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{url}/moto-api/", timeout=1).ok:
                return
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process(process)
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.1)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def aws_environment(endpoint: str) -> dict[str, str]:
    """The environment under which boto3 (the service's, the tests') uses moto at ``endpoint``."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
        "AWS_ENDPOINT_URL_SECRETSMANAGER": endpoint,  # the spelling design.md documents
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint,  # the spelling botocore reads
        "AWS_ENDPOINT_URL_EVENTBRIDGE": endpoint,
        "AWS_ENDPOINT_URL_SQS": endpoint,
    }


def apply_environment(values: dict[str, str]) -> dict[str, str | None]:
    """Set environment variables; return the previous values for restoring."""
    previous = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    return previous


def restore_environment(previous: dict[str, str | None]) -> None:
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
