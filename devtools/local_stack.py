"""The whole service on this machine: the real handlers in Lambda containers behind ``sam local
start-api``, DynamoDB, Secrets Manager, EventBridge and SQS from moto's server, and the WeChat
simulator pushing tickets to the local authorization-event URL and fans' messages to the local
message URL. Nothing talks to anything but this machine.

``LocalStack.start`` does, in order:

1. a container engine and the Lambda python3.12 base image (devtools.engine: scripts/container-engine.sh,
   scripts/lambda-base-image.sh: Docker or Finch when present, else podman, image built offline);
2. ``sam build`` of template.yaml into its own build directory;
3. run-time configuration in its work directory: ``sam-env.json`` (local/env.json plus the table,
   the event bus, the AWS endpoints and the WeChat hosts) and ``samconfig.toml``, so any
   ``sam local`` command can reuse it with ``--config-file .local/samconfig.toml``;
4. ``sam local start-api --warm-containers EAGER --skip-pull-image``: every route of template.yaml,
   run through devtools.samcli (SAM CLI with two fixes);
   and, at the same time, ``sam local start-lambda ReleaseWorkerFunction`` (its one warm container);
5. moto's server (devtools.moto_launcher), with the table made from template.yaml, the secret
   from local/sample-platform.json under the name local/env.json gives, the event bus with a
   queue a rule sends everything published on it to, and the release queue with its dead-letter
   queue (devtools.resources; a 10-second visibility timeout, so a failed step comes back soon);
   then the callback, the message URL and the release worker warmed up (the worker with its
   scheduled event);
6. the simulator (``python -m wechat_simulator``), wired to the local authorization-event URL and
   the local message URL (``/wechat/authorizers/$APPID$/messages``), with start-api's host as its
   only web-authorization domain (web OAuth's callback, ``PUBLIC_BASE_URL``, is the local API);
7. the release worker's event source (``python -m devtools.release_poller``): it long-polls the
   release queue and invokes the worker through start-lambda with each batch, deleting what the
   worker did not report failed, as Lambda's SQS event source mapping does when deployed.

The H5 routes serve the pages local/env.json's ``H5_ALLOW_LIST`` names (devtools.samples'
sample page), as the ``H5AllowList`` parameter does when deployed.

The Lambda containers reach moto and the simulator through ``host.docker.internal``, mapped with
``--add-host`` to the container network's gateway on this machine (podman: its bridge, e.g.
10.88.0.1), so both listen on that address only. With Docker or Finch (no gateway address on this
machine) they listen on all interfaces; set LOCAL_BIND_HOST to choose.

SAM CLI passes a function only the environment variables the template declares, so the built
template (in the local build directory, never the one you deploy) also declares, empty, the
local-only ones (the AWS endpoints, WECHAT_MP_BASE, ...); ``sam-env.json`` gives their values.

``make local`` runs it (devtools.cli); so do the e2e tests (tests/e2e), with their own ports and
directories. ``StackInfo`` (devtools.stack_info) describes the running stack to its callers.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import requests
import yaml

from devtools import resources, samcli
from devtools.children import Child, text_tail
from devtools.engine import Engine, ensure_engine, remove_containers_with_env
from devtools.errors import StackError
from devtools.ports import can_bind, host_port, pick_port, port_open, wait
from devtools.project import REGION, ROOT, Log, child_environment, local_parameters, sample_platform, say
from devtools.samples import NEVER_AUTHORIZED
from devtools.stack_info import DEFAULT_WORK_DIR, STATE_FILE, StackInfo

# The name the Lambda containers use for this machine (mapped with --add-host).
FUNCTION_HOST = "host.docker.internal"
# SAM CLI sets these in every function from its own credentials and region, whatever the template says.
SAM_PROVIDED = frozenset(
    {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION"}
)
DEFAULT_BUILD_DIR = ROOT / ".aws-sam" / "local" / "build"
RELEASE_WORKER = "ReleaseWorkerFunction"
# What the release worker's hourly schedule (EventBridge Scheduler) sends it.
SCHEDULED_EVENT = {"source": "aws.scheduler", "detail-type": "Scheduled Event", "detail": {}}


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
        bus_name: str = "wechat-component-local",
        lambda_port: int = 3001,
        release_worker: bool = True,
        release_visibility_timeout: int = 10,
        verbose: bool = False,
        log: Log = say,
    ) -> None:
        self.work_dir = work_dir
        self.build_dir = build_dir
        self.ports = {"api": api_port, "simulator": simulator_port, "moto": moto_port, "lambda": lambda_port}
        self.push_interval = push_interval
        self.warm_containers = warm_containers
        self.table_name = table_name
        self.bus_name = bus_name
        self.release_worker = release_worker
        self.release_visibility_timeout = release_visibility_timeout
        self.verbose = verbose
        self.log = log
        self.engine: Engine | None = None
        self.info: StackInfo | None = None
        self.children: dict[str, Child] = {}
        self._marker: str | None = None
        self._state_file = work_dir / STATE_FILE

    @property
    def release_queue_name(self) -> str:
        """The release queue's name (its dead-letter queue's: this + ``-dlq``)."""
        return f"{self.table_name}-releases"

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
        if samcli.installed_here():
            samcli.check()  # SAM CLI's fixes fit it, before anything starts
        self.engine = engine = ensure_engine(self.log, self.verbose)
        self.build()
        platform = sample_platform()
        local = local_parameters()
        secret_name = local["COMPONENT_SECRET_ID"]
        if local.get("COMPONENT_APPID", platform["appid"]) != platform["appid"]:
            raise StackError("local/env.json and local/sample-platform.json name different appids")

        api_port = pick_port(self.ports["api"], self.log, "sam local start-api")
        moto_port = pick_port(self.ports["moto"], self.log, "moto")
        sim_port = pick_port(self.ports["simulator"], self.log, "the WeChat simulator")
        lambda_port = (
            pick_port(self.ports["lambda"], self.log, "sam local start-lambda") if self.release_worker else 0
        )
        ports = {"api": api_port, "moto": moto_port, "simulator": sim_port, "lambda": lambda_port}
        env_vars = self._function_environment(engine, local, platform["appid"], ports)
        added = declare_local_variables(self.build_dir / "template.yaml", sorted(env_vars))
        if added:
            self.log(f"declared for local runs in the built template: {', '.join(added)}")
        env_file = self.work_dir / "sam-env.json"
        env_file.write_text(json.dumps({"Parameters": env_vars}, indent=2) + "\n", "utf-8")
        samconfig = self._write_samconfig(engine, env_file, platform["appid"], secret_name, ports=ports)

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
            bus_name=self.bus_name,
            lambda_url=f"http://127.0.0.1:{lambda_port}" if lambda_port else "",
        )

        # start-api first: its warm containers bring up the container network, whose gateway address
        # moto and the simulator listen on; and the simulator pushes to start-api as soon as it runs.
        self.log(f"sam local start-api on {info.api_url} (warm containers; log: {self._log_path('sam')})")
        sam = self._spawn(
            "sam local start-api",
            "sam",
            [*samcli.sam_command(), "local", "start-api", "--config-file", str(samconfig)],
            samcli.tool_environment(engine.docker_host, info.image_memo, info.moto_url),
        )
        worker = self._spawn_worker_lambda(info, engine, samconfig) if self.release_worker else None
        wait("sam local start-api", lambda: port_open("127.0.0.1", api_port), 300, sam)
        if worker is not None:
            wait("sam local start-lambda", lambda: port_open("127.0.0.1", lambda_port), 300, worker)
        wait(f"address {engine.bind_host} on this machine", lambda: can_bind(engine.bind_host, 0), 30, sam)

        self.log(f"moto server (DynamoDB, Secrets Manager, EventBridge, SQS) on {info.moto_url}")
        # moto.server with DynamoDB serialized, as in the tests
        argv = [sys.executable, "-m", "devtools.moto_launcher", "-H", engine.bind_host, "-p", str(moto_port)]
        moto = self._spawn("moto server", "moto", argv, child_environment())
        wait("moto server", lambda: self._answers(info.moto_url + "/moto-api/"), 60, moto)
        self._create_resources(info, platform)
        self._warm_up(info, sam, worker)

        self.log(f"WeChat simulator on {info.simulator_url}, pushing to {info.callback_url}")
        self.log(f"  and sending fans' messages to {info.message_url}")
        argv = [sys.executable, "-m", "wechat_simulator", "--host", engine.bind_host, "--port", str(sim_port)]
        argv += ["--platform-json", str(ROOT / "local/sample-platform.json")]
        argv += ["--callback-url", info.callback_url, "--push-interval", str(self.push_interval)]
        argv += ["--message-url", info.message_url]
        # Its web-authorization domain (网页授权域名) is start-api's host, as the console's must be
        # the API's: web OAuth's redirect_uri (PUBLIC_BASE_URL) must point at the local API.
        argv += ["--oauth-domain", host_port(info.api_url)[0]]
        sim = self._spawn("WeChat simulator", "simulator", argv, child_environment())
        wait("WeChat simulator", lambda: self._answers(info.simulator_url + "/__sim/platform"), 60, sim)

        if worker is not None:
            self._spawn_poller(info)

        info.save(self._state_file)
        return info

    def stop(self) -> None:
        """Stop everything this object started, in reverse order. Safe to call more than once."""
        if self.children:
            self.log("stopping " + ", ".join(c.name for c in reversed(self.children.values())))
        for key in ("worker", "simulator", "moto", "lambda", "sam"):
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
        argv = [samcli.sam_executable(), "build", "--template-file", str(ROOT / "template.yaml")]
        argv += ["--build-dir", str(self.build_dir), "--cache-dir", str(self.build_dir.parent / "cache")]
        argv += ["--cached"]
        proc = subprocess.run(
            argv,
            cwd=ROOT,
            env=samcli.tool_environment(),
            stdout=None if self.verbose else subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise StackError(f"sam build failed (exit {proc.returncode}):\n{text_tail(proc.stdout or '')}")

    def _write_samconfig(
        self, engine: Engine, env_file: Path, appid: str, secret_name: str, *, ports: dict[str, int]
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
            | {"host": "127.0.0.1", "port": ports["api"], "warm_containers": self.warm_containers},
            "local_invoke": common,
            "local_start_lambda": common
            | {"host": "127.0.0.1", "port": ports["lambda"] or 3001, "warm_containers": self.warm_containers},
        }
        lines = [
            "# Written by devtools/local_stack.py for the running local stack; regenerated on each start.",
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
        info.queue_url = info.create_bus(info.bus_name)
        self.log(
            f"event bus {info.bus_name} and queue {info.queue_url} created "
            f"(a rule sends everything wechat.component.{info.component_appid} publishes to the queue)"
        )
        queue, dead = info.create_release_queues(self.release_queue_name, self.release_visibility_timeout)
        expected = resources.queue_url(info.moto_url, self.release_queue_name)
        if queue != expected:  # the functions were given the URL before the queue existed
            raise StackError(f"moto made the release queue {queue}, not {expected}: is MOTO_ACCOUNT_ID set?")
        info.release_queue_url, info.release_dlq_url = queue, dead
        self.log(
            f"release queue {queue} (visibility timeout {self.release_visibility_timeout}s) and its "
            f"dead-letter queue {dead} (after {resources.RELEASE_MAX_RECEIVES} receives) created"
        )

    def _warm_up(self, info: StackInfo, sam: Child, worker: Child | None) -> None:
        """First requests to the two URLs WeChat calls, so the simulator's first push and first message
        meet warm functions (WeChat waits 5 seconds; a first call pays the function's imports, seconds
        on a busy machine): without a signature each answers 4xx and stores nothing. (In LAZY mode
        this also starts the containers.) A 5xx means a function cannot reach moto: better to know now."""
        targets = {
            "the callback": info.callback_url,
            "the message URL": info.message_url.replace("$APPID$", NEVER_AUTHORIZED),
        }
        for what, url in targets.items():
            self.log(f"warm-up: POST {what} without a signature (answers 4xx, stores nothing)")
            try:
                answer = requests.post(url, data=b"", timeout=180)
            except requests.RequestException as exc:
                raise StackError(f"warm-up request failed: {exc}; sam log:\n{sam.tail()}") from exc
            if answer.status_code >= 500:
                raise StackError(
                    f"warm-up answered {answer.status_code} {answer.text[:200]}; sam log:\n{sam.tail()}"
                )
        if worker is not None:
            self._warm_up_worker(info, worker)

    def _function_environment(
        self, engine: Engine, local: dict[str, str], appid: str, ports: dict[str, int]
    ) -> dict[str, str]:
        """The functions' variables in local runs (``sam-env.json``): local/env.json's, and where
        everything is as the Lambda containers reach it."""
        moto_port, sim_port, api_port = ports["moto"], ports["simulator"], ports["api"]
        for_functions = f"http://{FUNCTION_HOST}"
        moto_for_functions = f"{for_functions}:{moto_port}"
        sim_for_functions = f"{for_functions}:{sim_port}"
        self._marker = f"AWS_ENDPOINT_URL_DYNAMODB={moto_for_functions}"
        return local | {
            "TABLE_NAME": self.table_name,
            "COMPONENT_APPID": appid,
            "COMPONENT_SECRET_ID": local["COMPONENT_SECRET_ID"],
            "EVENT_BUS_NAME": self.bus_name,
            "AWS_ENDPOINT_URL_DYNAMODB": moto_for_functions,
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": moto_for_functions,
            "AWS_ENDPOINT_URL_EVENTBRIDGE": moto_for_functions,
            "AWS_ENDPOINT_URL_SQS": moto_for_functions,
            # The release queue, made on moto once it runs (the functions start first): its URL as
            # moto gives it, on the host the functions reach moto by.
            "RELEASE_QUEUE_URL": resources.queue_url(moto_for_functions, self.release_queue_name),
            "WECHAT_API_BASE": sim_for_functions,
            # Only links for a browser on this machine are built on these two hosts.
            "WECHAT_MP_BASE": f"http://{engine.local_host}:{sim_port}",
            "WECHAT_OPEN_BASE": f"http://{engine.local_host}:{sim_port}",
            # Links WeChat sends the browser back to: this machine's start-api. Deployed, the
            # functions take API Gateway's own domain and stage instead (never the Host header).
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{api_port}",
        }

    def _spawn_worker_lambda(self, info: StackInfo, engine: Engine, samconfig: Path) -> Child:
        """``sam local start-lambda`` of the release worker only: one warm container, invoked by the
        poller (Lambda's Invoke API on ``info.lambda_url``)."""
        log = self._log_path("lambda")
        self.log(f"sam local start-lambda {RELEASE_WORKER} on {info.lambda_url} (warm container; log: {log})")
        argv = [
            *samcli.sam_command(),
            "local",
            "start-lambda",
            RELEASE_WORKER,
            "--config-file",
            str(samconfig),
        ]
        env = samcli.tool_environment(engine.docker_host, info.image_memo, info.moto_url)
        return self._spawn("sam local start-lambda", "lambda", argv, env)

    def _spawn_poller(self, info: StackInfo) -> Child:
        """The release worker's event source (devtools.release_poller), as Lambda's SQS event source
        mapping is when deployed."""
        log = self._log_path("worker")
        self.log(f"release worker poller: {info.release_queue_url} -> {RELEASE_WORKER} (log: {log})")
        argv = [sys.executable, "-m", "devtools.release_poller", "--queue-url", info.release_queue_url]
        argv += ["--sqs-endpoint", info.moto_url, "--lambda-url", info.lambda_url]
        return self._spawn("release worker poller", "worker", argv, child_environment())

    def _warm_up_worker(self, info: StackInfo, worker: Child) -> None:
        """The release worker's first invocation, with its scheduled event: its container imports the
        handler now, not with the first release, and answers ``{"audit_checks_queued": 0}`` only when
        it reaches the table on moto."""
        self.log(f"warm-up: {RELEASE_WORKER} with its scheduled event (queues no audit check)")
        try:
            answer = info.invoke_worker(SCHEDULED_EVENT, timeout=180)
        except (requests.RequestException, ValueError) as exc:
            raise StackError(f"warm-up of {RELEASE_WORKER} failed: {exc}; its log:\n{worker.tail()}") from exc
        if answer != {"audit_checks_queued": 0}:
            raise StackError(f"warm-up of {RELEASE_WORKER} answered {answer}; its log:\n{worker.tail()}")

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
