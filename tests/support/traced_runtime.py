"""The real handlers with X-Ray tracing ON, as in the deployed template, behind a loopback gateway,
keeping every trace document the X-Ray SDK emits (tests/integration/test_no_secrets_in_traces.py).

Why a separate process: tests/conftest.py turns tracing off for the whole pytest process
(``POWERTOOLS_TRACE_DISABLED``, ``AWS_XRAY_SDK_ENABLED=false``) before anything imports Powertools,
the handler modules are imported once per process (``load_function``) with their module-level
``Tracer()``, Powertools' Tracer keeps its configuration (disabled or not, the provider) in class
state shared by every instance, and patching botocore/requests cannot be undone. Turning all that
on and back off inside the pytest process would leak tracing into every later test. Here it is set
up once, from the start, the way Lambda sets it up:

- ``LAMBDA_TASK_ROOT`` is set, so Powertools enables the Tracer (and patches what the handlers
  patch, ``wechat_core.tracing.PATCHED_MODULES``) and the X-Ray SDK uses its Lambda context: a
  facade segment made from
  ``_X_AMZN_TRACE_ID`` (sampled) in each thread that traces (here every request has a thread of
  its own), never sent itself, and every subsegment streamed out as it closes (Powertools sets the
  streaming threshold to 0, as in Lambda);
- the recorder's emitter is a ``CapturingEmitter``: instead of UDP to a daemon it appends each
  document, ``entity.serialize()`` exactly as the daemon would get it, as one line to a file.

Run as ``python -m tests.support.traced_runtime <capture-file>`` (``start``) with the service's
environment. It prints ``READY <gateway-url>`` on its stdout, then serves until its stdin closes;
it exits once everything is written. Everything else it prints (Powertools logs) goes to stderr.
``POST /__traced/refresher`` invokes the refresher's handler with the sample scheduled event.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from typing import IO, Any

# Lambda-like tracing, before anything imports aws_xray_sdk or Powertools.
TRACE_ROOT = "1-5759e988-bd862e3fe1be46a994272793"
TRACE_PARENT = "53995c3f42cd8ad8"  # the facade segment's id, as Lambda gives it
TRACE_HEADER = f"Root={TRACE_ROOT};Parent={TRACE_PARENT};Sampled=1"
TRACING_ENVIRONMENT = {
    "LAMBDA_TASK_ROOT": "/var/task",
    "_X_AMZN_TRACE_ID": TRACE_HEADER,
    "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    "POWERTOOLS_TRACE_DISABLED": "false",
    "AWS_XRAY_SDK_ENABLED": "true",
}
REFRESHER_PATH = "/__traced/refresher"  # POST: the refresher's handler, as its schedule invokes it


def start(capture_file: str, environment: dict[str, str]) -> subprocess.Popen[str]:
    """Run the traced runtime in its own process under ``environment`` (tracing settings added)."""
    from devtools.project import ROOT, child_environment

    env = child_environment(environment | TRACING_ENVIRONMENT)
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.traced_runtime", capture_file],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def main() -> None:
    capture_path = sys.argv[1]
    os.environ.update(TRACING_ENVIRONMENT)
    # Keep the real stdout for the READY line; everything printed from here on goes to stderr.
    ready: IO[str] = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)

    from aws_xray_sdk.core import xray_recorder
    from aws_xray_sdk.core.emitters.udp_emitter import UDPEmitter
    from aws_xray_sdk.core.lambda_launcher import LambdaContext as XRayLambdaContext

    class CapturingEmitter(UDPEmitter):  # type: ignore[misc]
        """Keeps each serialized trace document instead of sending it over UDP."""

        def __init__(self, out: IO[str]) -> None:
            super().__init__()
            self._out = out
            self._lock = threading.Lock()

        def send_entity(self, entity: Any) -> None:
            document = entity.serialize()
            with self._lock:
                self._out.write(document + "\n")
                self._out.flush()

    assert isinstance(xray_recorder.context, XRayLambdaContext), "the X-Ray SDK is not in Lambda mode"
    capture = open(capture_path, "w", encoding="utf-8")  # noqa: SIM115 - closed at the end of main
    xray_recorder.configure(emitter=CapturingEmitter(capture))

    from aws_lambda_powertools import Tracer
    from wechat_core import tracing

    # The first Tracer() decides for all: enabled here (no handler module is imported yet), and
    # patched as every handler patches (tracing.PATCHED_MODULES).
    assert not Tracer(patch_modules=tracing.PATCHED_MODULES).disabled, "Powertools left tracing disabled"

    from devtools.events import LambdaContext
    from devtools.template import ROOT, template
    from tests.support.gateway import Gateway
    from tests.support.lambdas import load_function

    class TracedGateway(Gateway):
        def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
            from werkzeug.wrappers import Request, Response

            request = Request(environ)
            if request.path == REFRESHER_PATH and request.method == "POST":
                properties = template()["Resources"]["RefresherFunction"]["Properties"]
                module = load_function(properties["CodeUri"])
                # The time it has left is its Timeout (the refresher plans its run by it).
                millis = int(properties["Timeout"]) * 1000
                context = LambdaContext(function_name="RefresherFunction", remaining_millis=millis)
                event = json.loads((ROOT / "events/refresher-scheduled.json").read_text("utf-8"))
                report = module.lambda_handler(event, context)
                return Response(json.dumps(report), mimetype="application/json")(environ, start_response)
            return super()._wsgi(environ, start_response)

    gateway = TracedGateway()
    # Authorization links send browsers back here.
    os.environ["PUBLIC_BASE_URL"] = gateway.url
    gateway.start()
    print(f"READY {gateway.url}", file=ready, flush=True)
    sys.stdin.read()  # until the test closes our stdin
    gateway.stop()
    capture.close()


if __name__ == "__main__":
    main()
