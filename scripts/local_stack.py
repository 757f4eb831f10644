"""Run the whole service on this machine: the real handlers in Lambda containers behind
``sam local start-api``, DynamoDB and Secrets Manager from moto's server, and the WeChat simulator
pushing tickets to the local authorization-event URL. Nothing talks to anything but this machine.

    python scripts/local_stack.py            # what `make local` runs; Ctrl-C (or SIGTERM) stops it all
    python scripts/local_stack.py --help

What it does, in order:

1. a container engine and the Lambda python3.12 base image (scripts/container-engine.sh,
   scripts/lambda-base-image.sh: Docker or Finch when present, else podman, image built offline);
2. ``sam build`` of template.yaml into its own build directory;
3. run-time configuration under ``.local/``: ``sam-env.json`` (local/env.json plus the table, the
   AWS endpoints and the WeChat hosts) and ``samconfig.toml``, so any ``sam local`` command can
   reuse it with ``--config-file .local/samconfig.toml``;
4. ``sam local start-api --warm-containers EAGER --skip-pull-image``: every route of template.yaml;
5. moto's server, with the table made from template.yaml (tests/support/template.py) and the secret
   from local/sample-platform.json under the name local/env.json gives;
6. the simulator (``python -m wechat_simulator``), wired to the local authorization-event URL.

The Lambda containers reach moto and the simulator through ``host.docker.internal``, mapped with
``--add-host`` to the container network's gateway on this machine (podman: its bridge, e.g.
10.88.0.1), so both listen on that address only. With Docker or Finch (no gateway address on this
machine) they listen on all interfaces; set LOCAL_BIND_HOST to choose.

SAM CLI passes a function only the environment variables the template declares, so the built
template (in the local build directory, never the one you deploy) also declares, empty, the
local-only ones (the AWS endpoints, WECHAT_MP_BASE, ...); ``sam-env.json`` gives their values.

SAM CLI runs in this interpreter through ``run_sam_cli``, with two fixes for SAM CLI 1.170 (its
EAGER warm containers were forgotten and replaced at the first request; every new container rebuilt
the function image): see there.

The ``LocalStack`` class does all this for tests too (tests/e2e); ``StackInfo`` describes a running
stack (``.local/stack.json``) for scripts/demo.py.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
import yaml  # noqa: E402

from tests.support.template import api_routes, table_definition, template, ttl_attribute  # noqa: E402

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

REGION = "us-east-1"
# The name the Lambda containers use for this machine (mapped with --add-host).
FUNCTION_HOST = "host.docker.internal"
EVENTS_PATH = "/wechat/component/events"
# SAM CLI sets these in every function from its own credentials and region, whatever the template says.
SAM_PROVIDED = frozenset(
    {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION"}
)
DEFAULT_WORK_DIR = ROOT / ".local"
DEFAULT_BUILD_DIR = ROOT / ".aws-sam" / "local" / "build"
STATE_FILE = "stack.json"

Log = Callable[[str], None]


def _print(message: str) -> None:
    print(f"local: {message}", flush=True)


class StackError(RuntimeError):
    """The local stack could not be started."""


class EngineUnavailable(StackError):
    """No container engine or Lambda base image could be set up on this machine."""


# --------------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------------


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _text_tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _can_bind(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def _pick_port(preferred: int, log: Log, what: str) -> int:
    """``preferred`` when nothing listens on it on any address, else a free port (0: any free port)."""
    if preferred and _can_bind("", preferred):
        return preferred
    port = _free_port()
    if preferred:
        log(f"port {preferred} is taken, {what} uses {port}")
    return port


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _wait(what: str, ready: Callable[[], bool], timeout: float, child: Child | None = None) -> None:
    """Poll ``ready`` (a port or an HTTP answer) until it holds; bounded by ``timeout``."""
    deadline = time.monotonic() + timeout
    while not ready():
        if child is not None and child.exited():
            raise StackError(f"{child.name} exited while waiting for {what}; its log:\n{child.tail()}")
        if time.monotonic() > deadline:
            detail = f"; its log:\n{child.tail()}" if child is not None else ""
            raise StackError(f"{what} not ready after {timeout:.0f}s{detail}")
        time.sleep(0.2)


def sam_executable() -> str:
    """SAM CLI next to this interpreter (the project's .venv), else the one on PATH."""
    beside = Path(sys.executable).parent / "sam"
    if beside.exists():
        return str(beside)
    found = shutil.which("sam")
    if not found:
        raise StackError("SAM CLI not found; run `make venv`")
    return found


def sam_command() -> list[str]:
    """How to run ``sam local``: in this interpreter through ``run_sam_cli`` (see there) when SAM CLI
    is installed here, else the ``sam`` executable."""
    import importlib.util  # noqa: PLC0415

    if importlib.util.find_spec("samcli") is not None:
        return [sys.executable, str(Path(__file__).resolve()), "sam-cli"]
    return [sam_executable()]


def run_sam_cli(argv: list[str]) -> int:
    """SAM CLI in this process, with two fixes for ``sam local`` here (SAM CLI 1.170).

    1. SAM CLI creates its warm-container runtime lazily (``InvokeContext.lambda_runtime``), and EAGER
       starts every function's container from several threads at once: threads that race there each
       make a runtime of their own, so the containers they start are forgotten. The first request to
       such a function then builds an image and starts another container (10 s and more here, longer
       than WeChat's 5-second limit), and the forgotten ones keep running after SAM CLI exits. Fix:
       those lazy properties are made thread-safe.
    2. With a layer built from this template, SAM CLI rebuilds the function image (base + layer, about
       10 s here) for every container it starts, in case the layer changed. Fix: an image is built
       again only when the layer's files (names, sizes, times) did change (``_reuse_layer_images``).

    Either fix is skipped if SAM CLI's internals differ (another version); it then runs as it is."""
    import threading  # noqa: PLC0415

    from samcli.cli.main import cli  # type: ignore[import-untyped]  # noqa: PLC0415

    lock = threading.RLock()
    _thread_safe_runtime(lock)
    _reuse_layer_images(lock)
    sys.argv = ["sam", *argv]
    result = cli.main(args=argv, prog_name="sam")
    return int(result or 0)


def _thread_safe_runtime(lock: Any) -> None:
    try:
        from samcli.commands.local.cli_common.invoke_context import InvokeContext  # type: ignore[import-untyped]  # noqa: PLC0415
    except ImportError:
        return

    def locked(getter: Callable[[Any], Any]) -> property:
        def get(self: Any) -> Any:
            with lock:
                return getter(self)

        return property(get)

    for name in ("lambda_runtime", "local_lambda_runner"):
        prop = getattr(InvokeContext, name, None)
        if isinstance(prop, property) and prop.fget is not None:
            setattr(InvokeContext, name, locked(prop.fget))


def _tree_fingerprint(path: Path) -> str:
    import hashlib  # noqa: PLC0415

    digest = hashlib.sha256(str(path).encode())
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        st = file.stat()
        digest.update(f"{file.relative_to(path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


IMAGE_MEMO_ENV = "WECHAT_LOCAL_IMAGE_MEMO"


@contextlib.contextmanager
def _image_memo(path: str | None, in_process: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The memo of built images, under an exclusive lock when it is a file; saved when left."""
    if not path:
        yield in_process
        return
    import fcntl  # noqa: PLC0415

    with open(path, "a+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.seek(0)
            try:
                loaded = json.loads(handle.read() or "{}")
            except ValueError:
                loaded = {}
            memo: dict[str, Any] = loaded if isinstance(loaded, dict) else {}
            yield memo
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps(memo, indent=1))
            handle.flush()
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _reuse_layer_images(lock: Any) -> None:
    """Build a function image (base + this template's layers) again only when a layer's files changed.

    What was built is remembered in the file named by WECHAT_LOCAL_IMAGE_MEMO (shared by the
    ``sam local`` processes of one stack, under an exclusive lock), else in this process only: the
    layers' fingerprint, and the tag and id of the image built. An image is reused only if its tag
    still names that very image (someone else's build of the same tag means building again)."""
    import hashlib  # noqa: PLC0415
    import inspect  # noqa: PLC0415

    try:
        from samcli.local.docker.lambda_image import LambdaImage  # type: ignore[import-untyped]  # noqa: PLC0415
    except ImportError:
        return
    original = LambdaImage.build
    signature = inspect.signature(original)
    if not {"runtime", "packagetype", "image", "layers", "architecture"} <= set(signature.parameters):
        return
    memo_file = os.environ.get(IMAGE_MEMO_ENV)
    in_process: dict[str, Any] = {}

    def image_id(client: Any, tag: str) -> str | None:
        try:
            return str(client.images.get(tag).id)
        except Exception:  # gone, or the engine cannot tell: build it again
            return None

    def build(self: Any, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        given = bound.arguments
        layers = given["layers"] or []
        local = [layer for layer in layers if getattr(layer, "is_defined_within_template", False)]
        if not local or getattr(self, "force_image_build", False):
            return original(self, *args, **kwargs)
        base = Path(str(getattr(getattr(self, "layer_downloader", None), "cwd", None) or "."))
        parts = [str(given[k]) for k in ("runtime", "packagetype", "image", "architecture")]
        parts += [f"{layer.full_path}={_tree_fingerprint(base / str(layer.codeuri))}" for layer in layers]
        key = hashlib.sha256("\n".join(parts).encode()).hexdigest()
        with lock, _image_memo(memo_file, in_process) as memo:
            known = memo.get(key)
            if known and image_id(self.docker_client, known["tag"]) == known["id"]:
                return known["tag"]
            tag = original(self, *args, **kwargs)
            built = image_id(self.docker_client, tag)
            if built:
                # One entry per tag: a tag names one image, so older entries for it are done with.
                for stale in [k for k, v in memo.items() if v.get("tag") == str(tag)]:
                    del memo[stale]
                memo[key] = {"tag": str(tag), "id": built}
            return tag

    LambdaImage.build = build


def tool_environment(
    docker_host: str | None = None, image_memo: str | None = None, sts_endpoint: str | None = None
) -> dict[str, str]:
    """Environment for SAM CLI and the engine scripts: this interpreter's bin first (``sam build``
    needs python3.12 on PATH), no telemetry, local credentials only, the chosen engine.

    ``sts_endpoint`` (moto's server): every ``sam local`` command first asks STS for the account
    id; with nothing from outside that costs 5 seconds of retries before SAM CLI falls back to
    its default id, on every ``sam local invoke``. moto answers at once (the same default id)."""
    env = dict(os.environ)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        env.pop(name, None)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["SAM_CLI_TELEMETRY"] = "0"
    local = _local_parameters()
    env["AWS_ACCESS_KEY_ID"] = local.get("AWS_ACCESS_KEY_ID", "local")
    env["AWS_SECRET_ACCESS_KEY"] = local.get("AWS_SECRET_ACCESS_KEY", "local")
    env["AWS_DEFAULT_REGION"] = env["AWS_REGION"] = REGION
    if docker_host is not None:
        if docker_host:
            env["DOCKER_HOST"] = docker_host
        else:
            env.pop("DOCKER_HOST", None)
    if image_memo:
        env[IMAGE_MEMO_ENV] = image_memo
    if sts_endpoint:
        env["AWS_ENDPOINT_URL_STS"] = sts_endpoint
        env["AWS_MAX_ATTEMPTS"] = "1"  # moto not up yet (start-api starts first): fail fast
    return env


def _local_parameters() -> dict[str, str]:
    data = json.loads((ROOT / "local/env.json").read_text("utf-8"))
    return {str(k): str(v) for k, v in data["Parameters"].items()}


def sample_platform() -> dict[str, str]:
    data = json.loads((ROOT / "local/sample-platform.json").read_text("utf-8"))
    return {str(k): str(v) for k, v in data.items()}


def has_route(method: str, path: str) -> bool:
    """Whether template.yaml serves ``method path`` (the routes others add appear here by themselves)."""
    return any(m == method.upper() and p == path for m, p, _, _ in api_routes())


def scheduled_functions() -> list[str]:
    """Logical ids of functions with a schedule (the refresher)."""
    names = []
    for name, resource in template()["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        events = resource.get("Properties", {}).get("Events", {}) or {}
        if any(e.get("Type") in ("Schedule", "ScheduleV2") for e in events.values()):
            names.append(name)
    return names


# --------------------------------------------------------------------------------------------------
# container engine
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Engine:
    docker_host: str  # "" = the engine's default (Docker's socket, or Finch that SAM CLI finds itself)
    host_gateway: str  # --add-host value for this machine: an address, or Docker's "host-gateway"

    @property
    def bind_host(self) -> str:
        """Where services for the functions listen: the gateway address when it is one of ours."""
        override = os.environ.get("LOCAL_BIND_HOST")
        if override:
            return override
        return self.host_gateway if _is_ip(self.host_gateway) else "0.0.0.0"

    @property
    def local_host(self) -> str:
        """How this machine's own callers reach those services."""
        return "127.0.0.1" if self.bind_host in ("0.0.0.0", "::") else self.bind_host


def _run_script(argv: list[str], env: dict[str, str], verbose: bool) -> str:
    """Run an engine script; return its stdout. Its progress (stderr) shows when ``verbose``."""
    try:
        proc = subprocess.run(
            argv,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=None if verbose else subprocess.PIPE,
            text=True,
            check=False,
        )
    except OSError as exc:
        raise EngineUnavailable(f"{argv[0]}: {exc}") from exc
    if proc.returncode != 0:
        detail = "" if verbose else "\n" + _text_tail(proc.stderr or "")
        raise EngineUnavailable(f"{' '.join(argv)} failed (exit {proc.returncode}){detail}")
    return proc.stdout


def ensure_engine(log: Log = _print, verbose: bool = False) -> Engine:
    """A container engine that answers, and the Lambda python3.12 base image in it."""
    scripts = ROOT / "scripts"
    log("container engine (scripts/container-engine.sh)")
    out = _run_script([str(scripts / "container-engine.sh")], tool_environment(), verbose)
    lines = out.strip().splitlines()
    if not lines or not lines[-1].startswith("DOCKER_HOST="):
        raise EngineUnavailable(f"scripts/container-engine.sh printed no DOCKER_HOST line: {out!r}")
    docker_host = lines[-1].removeprefix("DOCKER_HOST=")
    env = tool_environment(docker_host)
    gateway = _run_script([str(scripts / "container-engine.sh"), "host-gateway"], env, verbose).strip()
    if not gateway:
        raise EngineUnavailable("scripts/container-engine.sh host-gateway printed nothing")
    log("Lambda base image (scripts/lambda-base-image.sh)")
    _run_script([str(scripts / "lambda-base-image.sh")], env, verbose)
    return Engine(docker_host, gateway)


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=30)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(30)
        sock.connect(self._path)
        self.sock = sock


def _engine_api(docker_host: str, method: str, path: str) -> Any:
    socket_path = docker_host.removeprefix("unix://") if docker_host else "/var/run/docker.sock"
    conn = _UnixHTTPConnection(socket_path)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status >= 400:
        raise OSError(f"{method} {path}: HTTP {response.status}")
    return json.loads(body) if body else None


def remove_containers_with_env(docker_host: str, marker: str, log: Log) -> int:
    """Remove SAM CLI's containers whose environment holds ``marker`` (this stack's, nobody else's).

    ``sam local start-api`` removes its warm containers when it stops; this catches what a killed
    one leaves. Works with engines on a unix socket (podman, Docker); others are left alone."""
    socket_path = docker_host.removeprefix("unix://") if docker_host else "/var/run/docker.sock"
    if (docker_host and not docker_host.startswith("unix://")) or not Path(socket_path).exists():
        return 0
    filters = quote(json.dumps({"label": ["sam.cli.container.type"]}))
    removed = 0
    try:
        for summary in _engine_api(docker_host, "GET", f"/containers/json?all=1&filters={filters}") or []:
            cid = str(summary["Id"])
            details = _engine_api(docker_host, "GET", f"/containers/{cid}/json")
            if marker in (details.get("Config", {}).get("Env") or []):
                log(f"removing leftover Lambda container {cid[:12]}")
                _engine_api(docker_host, "DELETE", f"/containers/{cid}?force=1")
                removed += 1
    except (OSError, ValueError, http.client.HTTPException) as exc:
        log(f"could not check for leftover containers: {exc}")
    return removed


# --------------------------------------------------------------------------------------------------
# processes
# --------------------------------------------------------------------------------------------------


class Child:
    """A process in its own session (so Ctrl-C reaches only us, and we stop it in order)."""

    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "wb") as log_file:
            self.process = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def exited(self) -> bool:
        return self.process.poll() is not None

    def tail(self, lines: int = 30) -> str:
        return _tail(self.log_path, lines)

    def stop(self, timeout: float = 30) -> None:
        if self.exited():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        # Anything it left in its session (its own children).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)


# --------------------------------------------------------------------------------------------------
# a running stack, as callers see it
# --------------------------------------------------------------------------------------------------


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
    image_memo: str  # see _reuse_layer_images
    pid: int  # the process that runs the stack

    @property
    def callback_url(self) -> str:
        """The authorization-event URL (授权事件接收URL)."""
        return self.api_url + EVENTS_PATH

    def url(self, path: str, **params: str) -> str:
        for name, value in params.items():
            path = path.replace("{" + name + "}", quote(value, safe=""))
        return self.api_url + path

    # --- persistence (for scripts/demo.py) -------------------------------------------------------

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
        return _port_open(*_host_port(self.api_url))

    # --- SAM CLI ---------------------------------------------------------------------------------

    def invoke(
        self, function: str, event: Path | dict[str, Any], *, table_name: str | None = None
    ) -> dict[str, Any]:
        """``sam local invoke`` a function with this stack's configuration; return its answer.
        ``table_name``: use that table instead of the stack's (see ``create_table``)."""
        import tempfile  # noqa: PLC0415

        argv = [*sam_command(), "local", "invoke", function, "--config-file", self.samconfig]
        with tempfile.TemporaryDirectory(prefix="sam-invoke-") as tmp:
            if isinstance(event, dict):
                event_path = Path(tmp) / "event.json"
                event_path.write_text(json.dumps(event), "utf-8")
                event = event_path
            argv += ["--event", str(event)]
            if table_name is not None:
                env_vars = json.loads(Path(self.env_file).read_text("utf-8"))
                env_vars["Parameters"]["TABLE_NAME"] = table_name
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
            raise StackError(f"sam local invoke {function} failed:\n{_text_tail(proc.stderr)}")
        for line in reversed(proc.stdout.strip().splitlines()):
            with contextlib.suppress(ValueError):
                answer = json.loads(line)
                if isinstance(answer, dict):
                    return answer
        raise StackError(f"sam local invoke {function} gave no JSON answer:\n{proc.stdout}\n{proc.stderr}")

    # --- the table, read through moto ------------------------------------------------------------

    def dynamodb(self) -> DynamoDBClient:
        import boto3  # noqa: PLC0415

        local = _local_parameters()
        return boto3.client(
            "dynamodb",
            endpoint_url=self.moto_url,
            region_name=REGION,
            aws_access_key_id=local.get("AWS_ACCESS_KEY_ID", "local"),
            aws_secret_access_key=local.get("AWS_SECRET_ACCESS_KEY", "local"),
        )

    def create_table(self, name: str) -> None:
        """A table made from template.yaml's definition (tests/support/template.py)."""
        ddb = self.dynamodb()
        ddb.create_table(TableName=name, **table_definition())
        ddb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute()}
        )

    def create_secret(self, name: str, platform: dict[str, str]) -> None:
        import boto3  # noqa: PLC0415

        local = _local_parameters()
        secrets = boto3.client(
            "secretsmanager",
            endpoint_url=self.moto_url,
            region_name=REGION,
            aws_access_key_id=local.get("AWS_ACCESS_KEY_ID", "local"),
            aws_secret_access_key=local.get("AWS_SECRET_ACCESS_KEY", "local"),
        )
        secret = {k: platform[k] for k in ("appsecret", "token", "encoding_aes_key")}
        secrets.create_secret(Name=name, SecretString=json.dumps(secret))

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


def _host_port(url: str) -> tuple[str, int]:
    rest = url.split("://", 1)[-1].split("/", 1)[0]
    host, _, port = rest.rpartition(":")
    return host.strip("[]"), int(port)


# --------------------------------------------------------------------------------------------------
# the stack
# --------------------------------------------------------------------------------------------------


def declare_local_variables(built_template: Path, names: list[str]) -> list[str]:
    """Declare (empty) in the built template's Globals the variables local runs set that the template
    lacks: SAM CLI drops any ``--env-vars`` entry its function does not declare. Returns the names added."""
    doc = yaml.safe_load(built_template.read_text("utf-8"))
    function_globals = doc.setdefault("Globals", {}).setdefault("Function", {})
    variables = function_globals.setdefault("Environment", {}).setdefault("Variables", {})
    added = [n for n in names if n not in variables and n not in SAM_PROVIDED]
    for name in added:
        variables[name] = ""
    if added:
        built_template.write_text(yaml.safe_dump(doc, sort_keys=False, width=110), "utf-8")
    return added


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value))  # a TOML basic string


class LocalStack:
    """moto + the WeChat simulator + ``sam local start-api``, started and stopped together."""

    def __init__(
        self,
        *,
        work_dir: Path = DEFAULT_WORK_DIR,
        build_dir: Path = DEFAULT_BUILD_DIR,
        api_port: int = 3000,
        simulator_port: int = 8790,
        moto_port: int = 5000,
        push_interval: float = 600,
        warm_containers: str = "EAGER",
        table_name: str = "wechat-component-local",
        verbose: bool = False,
        log: Log = _print,
    ) -> None:
        self.work_dir = work_dir
        self.build_dir = build_dir
        self.ports = {"api": api_port, "simulator": simulator_port, "moto": moto_port}
        self.push_interval = push_interval
        self.warm_containers = warm_containers
        self.table_name = table_name
        self.verbose = verbose
        self.log = log
        self.engine: Engine | None = None
        self.info: StackInfo | None = None
        self.children: dict[str, Child] = {}
        self._marker: str | None = None
        self._state_file = work_dir / STATE_FILE

    # --- lifecycle ---------------------------------------------------------------------------------

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> StackInfo:
        """Start everything; on any failure stop what was started and raise."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> StackInfo:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        (self.work_dir / "logs").mkdir(exist_ok=True)
        self.engine = engine = ensure_engine(self.log, self.verbose)
        self.build()
        platform = sample_platform()
        local = _local_parameters()
        secret_name = local["COMPONENT_SECRET_ID"]
        if local.get("COMPONENT_APPID", platform["appid"]) != platform["appid"]:
            raise StackError("local/env.json and local/sample-platform.json name different appids")

        api_port = _pick_port(self.ports["api"], self.log, "sam local start-api")
        moto_port = _pick_port(self.ports["moto"], self.log, "moto")
        sim_port = _pick_port(self.ports["simulator"], self.log, "the WeChat simulator")
        for_functions = f"http://{FUNCTION_HOST}"
        moto_for_functions = f"{for_functions}:{moto_port}"
        sim_for_functions = f"{for_functions}:{sim_port}"
        self._marker = f"AWS_ENDPOINT_URL_DYNAMODB={moto_for_functions}"
        env_vars = local | {
            "TABLE_NAME": self.table_name,
            "COMPONENT_APPID": platform["appid"],
            "COMPONENT_SECRET_ID": secret_name,
            "AWS_ENDPOINT_URL_DYNAMODB": moto_for_functions,
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": moto_for_functions,
            "WECHAT_API_BASE": sim_for_functions,
            # Only links for a browser on this machine are built on these two hosts.
            "WECHAT_MP_BASE": f"http://{engine.local_host}:{sim_port}",
            "WECHAT_OPEN_BASE": f"http://{engine.local_host}:{sim_port}",
            # Links WeChat sends the browser back to: this machine's start-api. Deployed, the
            # functions take API Gateway's own domain and stage instead (never the Host header).
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{api_port}",
        }
        added = declare_local_variables(self.build_dir / "template.yaml", sorted(env_vars))
        if added:
            self.log(f"declared for local runs in the built template: {', '.join(added)}")
        env_file = self.work_dir / "sam-env.json"
        env_file.write_text(json.dumps({"Parameters": env_vars}, indent=2) + "\n", "utf-8")
        samconfig = self._write_samconfig(engine, env_file, platform["appid"], secret_name, api_port)

        info = self.info = StackInfo(
            api_url=f"http://127.0.0.1:{api_port}",
            simulator_url=f"http://{engine.local_host}:{sim_port}",
            moto_url=f"http://{engine.local_host}:{moto_port}",
            component_appid=platform["appid"],
            table_name=self.table_name,
            secret_name=secret_name,
            docker_host=engine.docker_host,
            samconfig=str(samconfig),
            env_file=str(env_file),
            image_memo=str(self.build_dir.parent / "image-memo.json"),
            pid=os.getpid(),
        )

        # start-api first: its warm containers bring up the container network, whose gateway address
        # moto and the simulator listen on; and the simulator pushes to start-api as soon as it runs.
        self.log(f"sam local start-api on {info.api_url} (warm containers; log: {self._log_path('sam')})")
        sam = self._spawn(
            "sam local start-api",
            "sam",
            [*sam_command(), "local", "start-api", "--config-file", str(samconfig)],
            tool_environment(engine.docker_host, info.image_memo, info.moto_url),
        )
        _wait("sam local start-api", lambda: _port_open("127.0.0.1", api_port), 300, sam)
        _wait(
            f"address {engine.bind_host} on this machine",
            lambda: _can_bind(engine.bind_host, 0),
            30,
            sam,
        )

        self.log(f"moto server (DynamoDB, Secrets Manager) on {info.moto_url}")
        moto = self._spawn(
            "moto server",
            "moto",
            [
                sys.executable,
                "-m",
                "tests.support.moto_launcher",  # moto.server with DynamoDB serialized, as in the tests
                "-H",
                engine.bind_host,
                "-p",
                str(moto_port),
            ],
            dict(os.environ),
        )
        _wait("moto server", lambda: self._answers(info.moto_url + "/moto-api/"), 60, moto)
        self._create_resources(info, platform)
        self._warm_up(info, sam)

        self.log(f"WeChat simulator on {info.simulator_url}, pushing to {info.callback_url}")
        sim_env = dict(os.environ)
        sim_env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT / "simulator"), str(ROOT / "layers/wechat_core"), sim_env.get("PYTHONPATH", "")]
        ).rstrip(os.pathsep)
        argv = [sys.executable, "-m", "wechat_simulator", "--host", engine.bind_host, "--port", str(sim_port)]
        argv += ["--platform-json", str(ROOT / "local/sample-platform.json")]
        argv += ["--callback-url", info.callback_url, "--push-interval", str(self.push_interval)]
        sim = self._spawn("WeChat simulator", "simulator", argv, sim_env)
        _wait("WeChat simulator", lambda: self._answers(info.simulator_url + "/__sim/platform"), 60, sim)

        info.save(self._state_file)
        return info

    def stop(self) -> None:
        """Stop everything this object started, in reverse order. Safe to call more than once."""
        if self.children:
            self.log("stopping " + ", ".join(c.name for c in reversed(self.children.values())))
        for key in ("simulator", "moto", "sam"):
            child = self.children.pop(key, None)
            if child is not None:
                child.stop()
        if self.engine is not None and self._marker is not None:
            remove_containers_with_env(self.engine.docker_host, self._marker, self.log)
            self._marker = None
        if self.info is not None:
            with contextlib.suppress(OSError, ValueError, TypeError):
                if StackInfo.load(self._state_file).pid == self.info.pid:
                    self._state_file.unlink()

    # --- steps -------------------------------------------------------------------------------------

    def build(self) -> None:
        """``sam build`` of template.yaml into this stack's build directory (cached)."""
        shown = self.build_dir.relative_to(ROOT) if self.build_dir.is_relative_to(ROOT) else self.build_dir
        self.log(f"sam build -> {shown}")
        argv = [sam_executable(), "build", "--template-file", str(ROOT / "template.yaml")]
        argv += ["--build-dir", str(self.build_dir), "--cache-dir", str(self.build_dir.parent / "cache")]
        argv += ["--cached"]
        proc = subprocess.run(
            argv,
            cwd=ROOT,
            env=tool_environment(),
            stdout=None if self.verbose else subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise StackError(f"sam build failed (exit {proc.returncode}):\n{_text_tail(proc.stdout or '')}")

    def _write_samconfig(
        self, engine: Engine, env_file: Path, appid: str, secret_name: str, api_port: int
    ) -> Path:
        common: dict[str, object] = {
            "template_file": str(self.build_dir / "template.yaml"),
            "env_vars": str(env_file),
            "parameter_overrides": f"ComponentAppId={appid} ComponentSecretName={secret_name}",
            "region": REGION,
            "skip_pull_image": True,
            "add_host": [f"{FUNCTION_HOST}:{engine.host_gateway}"],
        }
        sections = {
            "local_start_api": common
            | {"host": "127.0.0.1", "port": api_port, "warm_containers": self.warm_containers},
            "local_invoke": common,
            "local_start_lambda": common,
        }
        lines = [
            "# Written by scripts/local_stack.py for the running local stack; regenerated on each start.",
            "version = 0.1",
        ]
        for command, params in sections.items():
            lines += ["", f"[default.{command}.parameters]"]
            lines += [f"{key} = {_toml(value)}" for key, value in params.items()]
        path = self.work_dir / "samconfig.toml"
        path.write_text("\n".join(lines) + "\n", "utf-8")
        return path

    def _create_resources(self, info: StackInfo, platform: dict[str, str]) -> None:
        info.create_table(info.table_name)
        info.create_secret(info.secret_name, platform)
        self.log(f"table {info.table_name} (from template.yaml) and secret {info.secret_name} created")

    def _warm_up(self, info: StackInfo, sam: Child) -> None:
        """First request to the callback, so the simulator's first push meets a warm function: without
        a signature it reads the secret, answers 400 and stores nothing. (In LAZY mode this also starts
        the container.) A 5xx means the function cannot reach moto: better to know now."""
        self.log("warm-up: POST the callback without a signature (answers 400, stores nothing)")
        try:
            answer = requests.post(info.callback_url, data=b"", timeout=180)
        except requests.RequestException as exc:
            raise StackError(f"warm-up request failed: {exc}; sam log:\n{sam.tail()}") from exc
        if answer.status_code >= 500:
            raise StackError(
                f"warm-up answered {answer.status_code} {answer.text[:200]}; sam log:\n{sam.tail()}"
            )

    # --- internals ---------------------------------------------------------------------------------

    def _log_path(self, key: str) -> Path:
        return self.work_dir / "logs" / f"{key}.log"

    def _spawn(self, name: str, key: str, argv: list[str], env: dict[str, str]) -> Child:
        child = Child(name, argv, self._log_path(key), env)
        self.children[key] = child
        return child

    @staticmethod
    def _answers(url: str) -> bool:
        try:
            return requests.get(url, timeout=1).status_code < 500
        except requests.RequestException:
            return False


# --------------------------------------------------------------------------------------------------
# `make local`
# --------------------------------------------------------------------------------------------------


def banner(info: StackInfo, seconds: float) -> str:
    appid = info.component_appid
    rel_config = os.path.relpath(info.samconfig, ROOT)

    def route(method: str, path: str) -> str:
        url = info.api_url + path
        return url if has_route(method, path) else f"{url}  (not in template.yaml yet)"

    routes = "\n".join(
        f"    {method:6} {info.url(path)}   -> {name}" for method, path, name, _ in sorted(api_routes())
    )
    schedules = ", ".join(scheduled_functions()) or "none yet"
    return f"""
================================================================================================
 Local stack ready in {seconds:.1f}s  (component appid {appid})

 Authorization event URL (callback):  {info.callback_url}
 Authorization link:                  {route("GET", "/wechat/component/authorize")}
 Mini Program login:                  {route("POST", "/wechat/miniprogram/{appid}/login")}
 Every route in template.yaml:
{routes}
 Scheduled functions (invoke with sam local invoke): {schedules}

 WeChat simulator:  {info.simulator_url}
    pushes a ticket now:     curl -X POST {info.simulator_url}/__sim/push/ticket
    upstream API calls:      {info.simulator_url}/__sim/calls
    requests it received:    {info.simulator_url}/__sim/requests
    the platform it plays:   {info.simulator_url}/__sim/platform
 moto (DynamoDB, Secrets Manager): {info.moto_url}   (dashboard: {info.moto_url}/moto-api/)
    table {info.table_name}, secret {info.secret_name}

 In another terminal:
    make demo
    export "$(scripts/container-engine.sh | tail -n 1)"
    .venv/bin/sam local invoke CallbackFunction -e events/callback-ticket-push.json --config-file {rel_config}

 Ctrl-C stops everything started here.
================================================================================================
"""


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


class _Follower:
    """Prints what the children write to their logs, prefixed with their names."""

    def __init__(self, children: dict[str, Child]) -> None:
        self.files: list[tuple[str, IO[str]]] = []
        for key, child in children.items():
            if key == "moto":  # one line per AWS call: noise here, kept in its log file
                continue
            handle = open(child.log_path, encoding="utf-8", errors="replace")  # noqa: SIM115
            handle.seek(0, os.SEEK_END)
            self.files.append((key, handle))

    def pump(self) -> None:
        for key, handle in self.files:
            for line in handle.readlines():
                if '"GET /__sim/' in line:  # someone looking at the simulator (make demo): noise here
                    continue
                print(f"{key:>9} | {line.rstrip()}", flush=True)

    def close(self) -> None:
        for _, handle in self.files:
            handle.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run the service locally (sam local start-api, moto, WeChat simulator)."
    )
    parser.add_argument("--api-port", type=int, default=int(os.environ.get("LOCAL_API_PORT", "3000")))
    parser.add_argument("--simulator-port", type=int, default=int(os.environ.get("LOCAL_SIM_PORT", "8790")))
    parser.add_argument("--moto-port", type=int, default=int(os.environ.get("LOCAL_MOTO_PORT", "5000")))
    parser.add_argument(
        "--push-interval",
        type=float,
        default=float(os.environ.get("LOCAL_PUSH_INTERVAL", "600")),
        help="seconds between the simulator's ticket pushes (WeChat: 600)",
    )
    parser.add_argument("--quiet", action="store_true", help="do not follow the logs once ready")
    args = parser.parse_args(argv)

    started = time.monotonic()
    with contextlib.suppress(OSError, ValueError, TypeError):
        running = StackInfo.load(DEFAULT_WORK_DIR / STATE_FILE)
        if running.running():
            _print(f"a local stack already runs here (pid {running.pid}, {running.api_url}); stop it first")
            return 1
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGHUP, _raise_stop)
    stack = LocalStack(
        api_port=args.api_port,
        simulator_port=args.simulator_port,
        moto_port=args.moto_port,
        push_interval=args.push_interval,
        verbose=True,
    )
    code = 0
    follower: _Follower | None = None
    try:
        info = stack.start()
        print(banner(info, time.monotonic() - started), flush=True)
        follower = _Follower(stack.children)
        while True:
            if not args.quiet:
                follower.pump()
            for child in stack.children.values():
                if child.exited():
                    raise StackError(f"{child.name} stopped unexpectedly; its log:\n{child.tail()}")
            time.sleep(0.5)
    except (KeyboardInterrupt, _Stop):
        print("", flush=True)
    except StackError as exc:
        print(f"local: error: {exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        # Finish the clean-up even if Ctrl-C is pressed again.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        if follower is not None:
            follower.pump()
            follower.close()
        stack.stop()
        _print("stopped; nothing left running (the container engine service stays up)")
    return code


if __name__ == "__main__":
    if sys.argv[1:2] == ["sam-cli"]:
        sys.exit(run_sam_cli(sys.argv[2:]))
    sys.exit(main())
