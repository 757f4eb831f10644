"""A running local stack as its callers see it (``make demo``, scripts/seed_events.py, the e2e
tests): its URLs and names, saved in ``.local/stack.json`` by the process that runs it; ``sam local
invoke`` with its configuration; its table, what it published on its event bus, and the
simulator's counters."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import boto3
import requests

from devtools import resources
from devtools.children import text_tail
from devtools.errors import StackError
from devtools.events import EVENTS_PATH
from devtools.ports import host_port, port_open
from devtools.project import REGION, ROOT, local_parameters
from devtools.samcli import sam_command, tool_environment

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

MESSAGES_PATH = "/wechat/authorizers/$APPID$/messages"  # WeChat replaces $APPID$
DEFAULT_WORK_DIR = ROOT / ".local"
STATE_FILE = "stack.json"


@dataclass
class StackInfo:
    api_url: str  # sam local start-api
    simulator_url: str  # the WeChat simulator, from this machine
    moto_url: str  # moto's server, from this machine
    component_appid: str
    table_name: str
    secret_name: str
    docker_host: str
    samconfig: str  # --config-file for any `sam local` command against this stack
    env_file: str  # its --env-vars
    image_memo: str  # see devtools.samcli._reuse_layer_images
    pid: int  # the process that runs the stack
    bus_name: str = ""  # the functions' EVENT_BUS_NAME, on moto
    queue_url: str = ""  # a queue a rule sends everything published on the bus to
    lambda_url: str = ""  # sam local start-lambda, serving the release worker ("": not started)
    release_queue_url: str = ""  # the release queue (the functions' RELEASE_QUEUE_URL), from this machine
    release_dlq_url: str = ""  # its dead-letter queue

    @property
    def callback_url(self) -> str:
        """The authorization-event URL (授权事件接收URL)."""
        return self.api_url + EVENTS_PATH

    @property
    def message_url(self) -> str:
        """The message URL (消息与事件接收URL), ``$APPID$`` as WeChat fills it in."""
        return self.api_url + MESSAGES_PATH

    def url(self, path: str, **params: str) -> str:
        for name, value in params.items():
            path = path.replace("{" + name + "}", quote(value, safe=""))
        return self.api_url + path

    # --- persistence (for make demo and scripts/seed_events.py) ----------------------------------

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", "utf-8")

    @classmethod
    def load(cls, path: Path) -> StackInfo:
        data = json.loads(path.read_text("utf-8"))
        return cls(**data)

    def running(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return port_open(*host_port(self.api_url))

    # --- SAM CLI ---------------------------------------------------------------------------------

    def invoke(
        self,
        function: str,
        event: Path | dict[str, Any],
        *,
        table_name: str | None = None,
        bus_name: str | None = None,
        release_queue_url: str | None = None,
    ) -> dict[str, Any]:
        """``sam local invoke`` a function with this stack's configuration; return its answer.
        ``table_name``, ``bus_name``, ``release_queue_url``: use that table, that event bus, that
        release queue instead of the stack's (see ``create_table``, ``create_bus``,
        ``create_release_queues``)."""
        argv = [*sam_command(), "local", "invoke", function, "--config-file", self.samconfig]
        with tempfile.TemporaryDirectory(prefix="sam-invoke-") as tmp:
            if isinstance(event, dict):
                event_path = Path(tmp) / "event.json"
                event_path.write_text(json.dumps(event), "utf-8")
                event = event_path
            argv += ["--event", str(event)]
            overrides = {
                "TABLE_NAME": table_name,
                "EVENT_BUS_NAME": bus_name,
                "RELEASE_QUEUE_URL": release_queue_url,
            }
            if any(v is not None for v in overrides.values()):
                env_vars = json.loads(Path(self.env_file).read_text("utf-8"))
                env_vars["Parameters"] |= {k: v for k, v in overrides.items() if v is not None}
                env_path = Path(tmp) / "env.json"
                env_path.write_text(json.dumps(env_vars), "utf-8")
                argv += ["--env-vars", str(env_path)]
            proc = subprocess.run(
                argv,
                cwd=ROOT,
                env=tool_environment(self.docker_host, self.image_memo, self.moto_url),
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        if proc.returncode != 0:
            raise StackError(f"sam local invoke {function} failed:\n{text_tail(proc.stderr)}")
        for line in reversed(proc.stdout.strip().splitlines()):
            with contextlib.suppress(ValueError):
                answer = json.loads(line)
                if isinstance(answer, dict):
                    return answer
        raise StackError(f"sam local invoke {function} gave no JSON answer:\n{proc.stdout}\n{proc.stderr}")

    def invoke_worker(self, event: dict[str, Any], timeout: float = 120) -> Any:
        """The release worker's answer to ``event``, from its warm container behind ``sam local
        start-lambda`` (Lambda's Invoke API); raises ValueError when the invocation failed."""
        if not self.lambda_url:
            raise StackError("this local stack runs no release worker (sam local start-lambda)")
        url = f"{self.lambda_url}/2015-03-31/functions/ReleaseWorkerFunction/invocations"
        answer = requests.post(url, data=json.dumps(event), timeout=timeout)
        if answer.status_code != 200 or answer.headers.get("X-Amz-Function-Error"):
            raise ValueError(f"the invocation failed ({answer.status_code}): {answer.text[:500]}")
        return answer.json()

    # --- the table, the secret and the event bus, through moto ------------------------------------

    def _moto_client(self, service: str) -> Any:
        local = local_parameters()
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.moto_url,
            region_name=REGION,
            aws_access_key_id=local.get("AWS_ACCESS_KEY_ID", "local"),
            aws_secret_access_key=local.get("AWS_SECRET_ACCESS_KEY", "local"),
        )

    def dynamodb(self) -> DynamoDBClient:
        client: DynamoDBClient = self._moto_client("dynamodb")
        return client

    def secretsmanager(self) -> SecretsManagerClient:
        client: SecretsManagerClient = self._moto_client("secretsmanager")
        return client

    def create_table(self, name: str) -> None:
        """A table made from template.yaml's definition (devtools.resources)."""
        resources.create_table(self.dynamodb(), name)

    def create_secret(self, name: str, platform: dict[str, str]) -> None:
        resources.create_secret(self.secretsmanager(), name, platform)

    def sqs(self) -> Any:
        return self._moto_client("sqs")

    def create_release_queues(self, name: str, visibility_timeout: int = 10) -> tuple[str, str]:
        """A release queue and its dead-letter queue (devtools.resources); returns both URLs."""
        return resources.create_release_queues(self.sqs(), name, visibility_timeout)

    def create_bus(self, name: str) -> str:
        """An event bus, and a queue a rule sends everything this platform publishes on it to
        (devtools.resources); returns the queue's URL."""
        return resources.create_bus_and_queue(
            self._moto_client("events"), self._moto_client("sqs"), name, self.component_appid
        )

    def published(self, queue_url: str | None = None) -> list[dict[str, Any]]:
        """What the functions published on the event bus since it was last read: EventBridge's
        envelopes (``source``, ``detail-type``, ``detail``, ...), taken from the queue (the stack's
        unless ``queue_url``: see ``create_bus``)."""
        return resources.receive_all(self._moto_client("sqs"), queue_url or self.queue_url)

    def items(self, table_name: str | None = None) -> list[dict[str, Any]]:
        """Every item in the table, in a stable order (local runs and tests only)."""
        pages = self.dynamodb().get_paginator("scan").paginate(TableName=table_name or self.table_name)
        items = [dict(i) for page in pages for i in page["Items"]]
        return sorted(items, key=lambda i: (str(i["pk"].get("S")), str(i["sk"].get("S"))))

    def stored_ticket(self) -> dict[str, Any] | None:
        item = (
            self.dynamodb()
            .get_item(
                TableName=self.table_name,
                Key={"pk": {"S": f"component#{self.component_appid}"}, "sk": {"S": "ticket"}},
            )
            .get("Item")
        )
        return dict(item) if item else None

    def simulator_calls(self) -> dict[str, int]:
        """Upstream WeChat API calls the functions made, by API name."""
        answer = requests.get(self.simulator_url + "/__sim/calls", timeout=10)
        answer.raise_for_status()
        return {str(k): int(v) for k, v in answer.json().items()}
