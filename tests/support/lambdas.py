"""Loading the real handlers, Lambda contexts, and API Gateway REST proxy events."""

from __future__ import annotations

import base64
import importlib.util
import re
import sys
import uuid
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl

from tests.support import iam
from tests.support.template import ROOT, binary_media_types

# The domain API Gateway puts in every event's request context (its own, not the Host header).
API_DOMAIN = "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"


def load_function(code_uri: str) -> ModuleType:
    """Import ``<code_uri>/app.py`` under a unique module name (every function's file is app.py).

    Its handler's AWS calls are recorded as the template's function of ``code_uri`` (tests/support/iam.py).
    """
    name = "fn_" + re.sub(r"\W", "_", code_uri)
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / code_uri / "app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    iam.attribute(module, code_uri)
    return module


@dataclass
class LambdaContext:
    function_name: str = "test-function"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    remaining_millis: int = 10_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_millis


def rest_event(
    method: str,
    path: str,
    *,
    resource: str | None = None,
    path_parameters: dict[str, str] | None = None,
    query: dict[str, str] | str | None = None,
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """An API Gateway REST (v1) proxy event as API Gateway builds it, binary media types included."""
    headers = dict(headers or {})
    if isinstance(query, str):
        query = dict(parse_qsl(query, keep_blank_values=True))
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
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in (query or {}).items()} or None,
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


def decode_body(response: dict[str, Any]) -> bytes:
    body = response.get("body") or ""
    return base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()
