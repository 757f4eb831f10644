"""Loading the real handlers, Lambda contexts, and the handlers' API Gateway answers (the events
themselves: devtools/events.py)."""

from __future__ import annotations

import base64
import importlib.util
import re
import sys
import uuid
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from devtools.project import ROOT
from tests.support import iam


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


def decode_body(response: dict[str, Any]) -> bytes:
    body = response.get("body") or ""
    return base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()
