"""boto3 clients, built on first need (``runtime`` keeps one per process).

Endpoints follow boto3's own ``AWS_ENDPOINT_URL_<SERVICE>`` variables, so local runs and tests
point them at moto's server without code of ours.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


# botocore names the variable after the service id ("Secrets Manager" -> SECRETS_MANAGER,
# https://docs.aws.amazon.com/sdkref/latest/guide/ss-endpoints-table.html). Our documented
# configuration spells it without the underscore, so accept that spelling too.
_ENDPOINT_ALIASES = {"AWS_ENDPOINT_URL_SECRETSMANAGER": "AWS_ENDPOINT_URL_SECRETS_MANAGER"}


def apply_endpoint_aliases() -> None:
    for alias, official in _ENDPOINT_ALIASES.items():
        if os.environ.get(alias) and not os.environ.get(official):
            os.environ[official] = os.environ[alias]


def dynamodb_client() -> DynamoDBClient:
    import boto3  # noqa: PLC0415 - imported on first use, not at cold start
    from botocore.config import Config  # noqa: PLC0415

    # Short timeouts: a Lambda behind WeChat's 5-second limit cannot wait on a stuck connection.
    # The pool holds a connection per refresher thread (REFRESH_CONCURRENCY, at most 32).
    config = Config(
        connect_timeout=2,
        read_timeout=5,
        retries={"mode": "standard", "max_attempts": 3},
        max_pool_connections=32,
    )
    return boto3.client("dynamodb", config=config)


def events_client() -> Any:
    """EventBridge, with the same short timeouts: a message waits on it inside WeChat's 5 s."""
    import boto3  # noqa: PLC0415
    from botocore.config import Config  # noqa: PLC0415

    config = Config(connect_timeout=2, read_timeout=3, retries={"mode": "standard", "max_attempts": 2})
    return boto3.client("events", config=config)


def sqs_client() -> Any:
    """SQS, with the same short timeouts (an audit event enqueues its release inside WeChat's 5 s)."""
    import boto3  # noqa: PLC0415
    from botocore.config import Config  # noqa: PLC0415

    config = Config(connect_timeout=2, read_timeout=3, retries={"mode": "standard", "max_attempts": 3})
    return boto3.client("sqs", config=config)
