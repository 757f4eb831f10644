"""Loading the real handlers and reading their API Gateway answers (the events, and the Lambda
context a handler is called with, are devtools/events.py's; re-exported here for the tests)."""

from __future__ import annotations

import base64
import importlib.util
import re
import sys
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


def decode_body(response: dict[str, Any]) -> bytes:
    body = response.get("body") or ""
    return base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()
