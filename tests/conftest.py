"""Shared fixtures: moto's server, the table and secret from template.yaml, the WeChat simulator,
and the loopback API gateway in front of the real handlers."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

import pytest

# Set before anything imports Powertools: no X-Ray daemon in tests, metrics to stdout.
os.environ.update(
    {
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_SERVICE_NAME": "wechat-component",
        "POWERTOOLS_METRICS_NAMESPACE": "WeChatComponentTest",
        "POWERTOOLS_DEV": "0",
        "AWS_XRAY_SDK_ENABLED": "false",
    }
)
for _name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
    os.environ.pop(_name, None)

from devtools.project import python_path  # noqa: E402

# Every Python process a test starts (scripts, moto's server, the lease holder) finds the project.
os.environ["PYTHONPATH"] = python_path(os.environ.get("PYTHONPATH"))

from wechat_core import clock, runtime  # noqa: E402
from wechat_simulator import Platform, Simulator  # noqa: E402

from devtools.resources import (  # noqa: E402
    MotoServer,
    Resources,
    apply_environment,
    aws_environment,
    restore_environment,
)
from tests.support.deployment import deploy  # noqa: E402
from tests.support.gateway import Gateway  # noqa: E402
from tests.support.iam import RECORDER, CallRecorder  # noqa: E402


def reset_service_caches() -> None:
    runtime.reset()


@pytest.fixture(scope="session", autouse=True)
def aws_calls_within_policy() -> Iterator[CallRecorder]:
    """Every AWS call a handler made in this session (tests/support/iam.py records them) is allowed by
    its function's role in template.yaml as SAM translates it; checked when the session ends."""
    recorder = RECORDER.install()
    yield recorder
    recorder.uninstall()
    refused = recorder.refused()
    assert not refused, "calls the function's policy in template.yaml does not allow:\n" + "\n".join(
        f"  {c.function}: {c.action} on {c.resource}" for c in refused
    )


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer()
    previous = apply_environment(aws_environment(server.url))
    yield server
    restore_environment(previous)
    server.stop()


@pytest.fixture
def platform() -> Platform:
    return Platform.generate()


@pytest.fixture
def simulator(platform: Platform) -> Iterator[Simulator]:
    sim = Simulator(platform).start()
    yield sim
    sim.stop()


@pytest.fixture
def service(moto_server: MotoServer, platform: Platform, simulator: Simulator) -> Iterator[Resources]:
    """A deployed service: table and secret on moto, configured for the simulator's platform."""
    resources, previous = deploy(platform, simulator.url)
    reset_service_caches()
    yield resources
    restore_environment(previous)
    reset_service_caches()


@pytest.fixture
def gateway(service: Resources) -> Iterator[Gateway]:
    gw = Gateway().start()
    yield gw
    gw.stop()


class FixedClock:
    def __init__(self, start: float) -> None:
        self.value = start

    def __call__(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds


@pytest.fixture
def fixed_clock() -> Iterator[FixedClock]:
    import time

    fake = FixedClock(time.time())
    clock.set_source(fake)
    yield fake
    clock.set_source(None)


class LogCapture:
    """Every record of the service's loggers, formatted as Powertools writes them to CloudWatch."""

    def __init__(self) -> None:
        import io
        import logging

        from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(LambdaPowertoolsFormatter())
        self.loggers = [logging.getLogger(), logging.getLogger("wechat-component")]
        for logger in self.loggers:
            logger.addHandler(self.handler)

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def close(self) -> None:
        for logger in self.loggers:
            logger.removeHandler(self.handler)


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    capture = LogCapture()
    yield capture
    capture.close()


def _secret_forms(session_key: str) -> set[str]:
    """A session_key as it could leak: as issued, decoded to hex, or URL-quoted."""
    import base64
    from urllib.parse import quote

    forms = {session_key, quote(session_key, safe="")}
    with contextlib.suppress(ValueError):
        forms.add(base64.b64decode(session_key).hex())
    return forms


@pytest.fixture(autouse=True)
def user_secrets_never_leak(
    request: pytest.FixtureRequest, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> Iterator[None]:
    """After every test that ran the simulator: no session_key or web OAuth token it issued appears
    in any response the loopback gateway gave, in anything written to stdout/stderr (Powertools logs
    there), or in any log record."""
    if "simulator" not in request.fixturenames:
        yield
        return
    # Taken before the test, so both are torn down after this check.
    sim: Simulator = request.getfixturevalue("simulator")
    gateway = request.getfixturevalue("gateway") if "gateway" in request.fixturenames else None
    yield
    issued = [k["session_key"] for k in sim.session_keys()]
    oauth_tokens = sim.oauth_tokens()
    if not issued and not oauth_tokens:
        return
    out, err = capfd.readouterr()
    sys.stdout.write(out)  # keep the output for pytest's report
    sys.stderr.write(err)
    answers = gateway.answers if gateway is not None else []
    haystack = "\n".join([out, err, caplog.text, *answers])
    leaked = [key for key in issued for form in _secret_forms(key) if form in haystack]
    assert not leaked, f"{len(leaked)} session_key(s) leaked into responses or logs"
    leaked = [token for token in oauth_tokens if token in haystack]
    assert not leaked, f"{len(leaked)} OAuth token(s) leaked into responses or logs"
