"""The container engine for ``sam local``: set up by scripts/container-engine.sh (Docker or Finch
when present, else podman) with the Lambda base image from scripts/lambda-base-image.sh (pulled, or
built offline), and spoken to through the ``docker`` SDK (the one SAM CLI itself uses)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.children import text_tail
from devtools.errors import EngineUnavailable
from devtools.ports import is_ip
from devtools.project import ROOT, Log, say
from devtools.samcli import tool_environment

SCRIPTS = ROOT / "scripts"
DEFAULT_SOCKET = "/var/run/docker.sock"  # what an empty DOCKER_HOST means
# Every container SAM CLI starts carries this label.
SAM_CONTAINER_LABEL = "sam.cli.container.type"


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
        return self.host_gateway if is_ip(self.host_gateway) else "0.0.0.0"

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
        detail = "" if verbose else "\n" + text_tail(proc.stderr or "")
        raise EngineUnavailable(f"{' '.join(argv)} failed (exit {proc.returncode}){detail}")
    return proc.stdout


def ensure_engine(log: Log = say, verbose: bool = False) -> Engine:
    """A container engine that answers, and the Lambda python3.12 base image in it."""
    log("container engine (scripts/container-engine.sh)")
    out = _run_script([str(SCRIPTS / "container-engine.sh")], tool_environment(), verbose)
    lines = out.strip().splitlines()
    if not lines or not lines[-1].startswith("DOCKER_HOST="):
        raise EngineUnavailable(f"scripts/container-engine.sh printed no DOCKER_HOST line: {out!r}")
    docker_host = lines[-1].removeprefix("DOCKER_HOST=")
    env = tool_environment(docker_host)
    gateway = _run_script([str(SCRIPTS / "container-engine.sh"), "host-gateway"], env, verbose).strip()
    if not gateway:
        raise EngineUnavailable("scripts/container-engine.sh host-gateway printed nothing")
    log("Lambda base image (scripts/lambda-base-image.sh)")
    _run_script([str(SCRIPTS / "lambda-base-image.sh")], env, verbose)
    return Engine(docker_host, gateway)


def engine_client(docker_host: str) -> Any | None:
    """A ``docker.DockerClient`` for the engine at ``docker_host`` ("" = Docker's default socket),
    or None when its unix socket is not there (no engine left, or Finch, which SAM CLI finds by
    itself). The client asks the engine for its API version, so it fails here if none answers."""
    import docker  # type: ignore[import-untyped]  # noqa: PLC0415 - imported only when an engine is used

    base_url = docker_host or f"unix://{DEFAULT_SOCKET}"
    if base_url.startswith("unix://") and not Path(base_url.removeprefix("unix://")).exists():
        return None
    return docker.DockerClient(base_url=base_url, timeout=30)


def remove_containers_with_env(docker_host: str, marker: str, log: Log) -> int:
    """Remove SAM CLI's containers whose environment holds ``marker`` (this stack's, nobody else's).

    ``sam local start-api`` removes its warm containers when it stops; this catches what a killed
    one leaves."""
    import requests  # noqa: PLC0415
    from docker.errors import DockerException  # type: ignore[import-untyped]  # noqa: PLC0415

    removed = 0
    try:
        client = engine_client(docker_host)
        if client is None:
            return 0
        try:
            # Inspected one by one (not sparse): the environment is in each container's Config.
            sam_containers = {"label": SAM_CONTAINER_LABEL}
            found = client.containers.list(all=True, filters=sam_containers, ignore_removed=True)
            for container in found:
                if marker in (container.attrs.get("Config", {}).get("Env") or []):
                    log(f"removing leftover Lambda container {container.short_id}")
                    container.remove(force=True)
                    removed += 1
        finally:
            client.close()
    except (DockerException, requests.RequestException, OSError) as exc:
        log(f"could not check for leftover containers: {exc}")
    return removed
