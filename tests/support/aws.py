"""moto's server on loopback, and the table and secret the service needs, made from template.yaml."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import requests

from tests.support import moto_launcher, template

REGION = "us-east-1"
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MotoServer:
    """moto's standalone server in its own process, on a loopback port, with DynamoDB serialized
    (tests/support/moto_launcher.py)."""

    def __init__(self, switch_interval: float | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Checked here too: the server's own refusal would go to DEVNULL and read "did not start".
        moto_launcher.check()
        argv = [sys.executable, "-m", "tests.support.moto_launcher", "-H", "127.0.0.1", "-p", str(self.port)]
        if switch_interval is not None:
            argv += ["--switch-interval", str(switch_interval)]
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,  # where -m finds tests.support, whichever directory pytest or the bench ran from
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:  # start-up poll, bounded: the server process is ready when it answers
            try:
                if requests.get(f"{self.url}/moto-api/", timeout=1).ok:
                    return
            except requests.ConnectionError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("moto server did not start")
            time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def aws_environment(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
        "AWS_ENDPOINT_URL_SECRETSMANAGER": endpoint,  # the spelling design.md documents
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint,  # the spelling botocore reads
    }


@dataclass
class Resources:
    table_name: str
    secret_name: str

    @property
    def dynamodb(self) -> Any:
        return boto3.client("dynamodb", region_name=REGION)

    def items(self) -> list[dict[str, Any]]:
        """Every item in the table (tests only; the service never scans)."""
        paginator = self.dynamodb.get_paginator("scan")
        return [i for page in paginator.paginate(TableName=self.table_name) for i in page["Items"]]

    def snapshot(self) -> list[dict[str, Any]]:
        """The table's items in a stable order, to assert that nothing changed."""
        return sorted(self.items(), key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def create_resources(secret: dict[str, str]) -> Resources:
    suffix = uuid.uuid4().hex[:10]
    table_name = f"wechat-test-{suffix}"
    secret_name = f"wechat-component-{suffix}"
    ddb = boto3.client("dynamodb", region_name=REGION)
    ddb.create_table(TableName=table_name, **template.table_definition())
    ddb.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": template.ttl_attribute()},
    )
    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name=secret_name, SecretString=json.dumps(secret)
    )
    return Resources(table_name, secret_name)


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
