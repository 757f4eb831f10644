"""API Gateway REST (v1) proxy events, as API Gateway builds them for the template's routes: for the
sample events of events/ (``make events``), the tests' loopback gateway and the benchmarks; and the
Lambda context a handler is called with in-process."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from devtools.template import binary_media_types

# WeChat's two callback routes (template.yaml): the platform's pushes, and each account's messages.
EVENTS_PATH = "/wechat/component/events"
MESSAGES_ROUTE = "/wechat/authorizers/{appid}/messages"

# The domain API Gateway puts in every event's request context (its own, not the Host header).
API_DOMAIN = "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"
# The headers of the sample events' requests: to `make local`'s start-api (never used for links).
LOCAL_API_HEADERS = {"Host": "127.0.0.1:3000", "X-Forwarded-Proto": "http"}


def rest_event(
    method: str,
    path: str,
    *,
    resource: str | None = None,
    path_parameters: dict[str, str] | None = None,
    query: Mapping[str, str] | Sequence[tuple[str, str]] | str | None = None,
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """An API Gateway REST (v1) proxy event as API Gateway builds it, binary media types included.
    A query given as a string or as pairs may repeat a name: ``queryStringParameters`` then holds
    the last value, ``multiValueQueryStringParameters`` every one, as API Gateway does."""
    headers = dict(headers or {})
    if isinstance(query, str):
        pairs = parse_qsl(query, keep_blank_values=True)
    elif isinstance(query, Mapping):
        pairs = list(query.items())
    else:
        pairs = list(query or ())
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        multi.setdefault(name, []).append(value)
    raw = body.encode() if isinstance(body, str) else body
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    binary = content_type.split(";")[0].strip() in binary_media_types()
    if raw is None:
        event_body, encoded = None, False
    elif binary:
        event_body, encoded = base64.b64encode(raw).decode(), True
    else:
        event_body, encoded = raw.decode("utf-8", "surrogateescape"), False
    return {
        "resource": resource or path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in multi.items()} or None,
        "multiValueQueryStringParameters": multi or None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource or path,
            "httpMethod": method,
            "path": f"/v1{path}",
            "stage": "v1",
            "domainName": API_DOMAIN,
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": source_ip, "userAgent": headers.get("User-Agent", "")},
        },
        "body": event_body,
        "isBase64Encoded": encoded,
    }


def error_expectation(status: int, reason: str) -> dict[str, Any]:
    """What events/expected.json expects of an error answer: ``status`` and ``{"error": reason}``
    (see ``check_answer`` in tests/support/event_setups.py)."""
    return {"expect": {"statusCode": status}, "body_keys": ["error"], "body": {"error": reason}}


def push_event(
    query: dict[str, str] | None, body: bytes | str | None, content_type: str = "text/xml"
) -> dict[str, Any]:
    """WeChat's POST of a signed push to the authorization-event URL."""
    return rest_event("POST", EVENTS_PATH, query=query, body=body, headers={"Content-Type": content_type})


def message_event(appid: str, query: dict[str, str] | None, body: bytes | str | None) -> dict[str, Any]:
    """WeChat's POST of a signed message to ``appid``'s message URL."""
    return rest_event(
        "POST",
        MESSAGES_ROUTE.replace("{appid}", appid),
        resource=MESSAGES_ROUTE,
        path_parameters={"appid": appid},
        query=query,
        body=body,
        headers={"Content-Type": "text/xml"},
    )


@dataclass
class LambdaContext:
    """What a handler reads of Lambda's context, for calling it in-process."""

    function_name: str = "test-function"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    remaining_millis: int = 10_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_millis
