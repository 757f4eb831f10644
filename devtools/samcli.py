"""SAM CLI as the local stack runs it: in this interpreter, with two fixes for ``sam local``.

    python -m devtools.samcli local start-api --config-file .local/samconfig.toml   # = sam ..., fixed

1. SAM CLI creates its warm-container runtime lazily (``InvokeContext.lambda_runtime``), and EAGER
   starts every function's container from several threads at once: threads that race there each
   make a runtime of their own, so the containers they start are forgotten. The first request to
   such a function then builds an image and starts another container (10 s and more here, longer
   than WeChat's 5-second limit), and the forgotten ones keep running after SAM CLI exits. Fix:
   those lazy properties are made thread-safe (``_thread_safe_runtime``).
2. With a layer built from this template, SAM CLI rebuilds the function image (base + layer, about
   10 s here) for every container it starts, in case the layer changed. Fix: an image is built
   again only when the layer's files (names, sizes, times) did change (``_reuse_layer_images``).

Both were written by reading SAM CLI ``SAM_CLI_VERSION``'s source. Another version may have fixed
them or moved what they patch, so on another version, or when what they patch is not there, SAM CLI
is not run: ``SamCliMismatch`` says what to re-check (``check`` tells before anything starts).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import inspect
import json
import os
import shutil
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from devtools.errors import StackError
from devtools.project import REGION, local_parameters

# The version the fixes below were written against (the pin in requirements-dev.txt).
SAM_CLI_VERSION = "1.170.0"
IMAGE_MEMO_ENV = "WECHAT_LOCAL_IMAGE_MEMO"
_BUILD_PARAMETERS = {"runtime", "packagetype", "image", "layers", "architecture"}


class SamCliMismatch(StackError):
    """The installed SAM CLI is not the one these fixes were written against."""


def installed_here() -> bool:
    """Whether SAM CLI is installed in this interpreter (then it runs here, with the fixes)."""
    return importlib.util.find_spec("samcli") is not None


def check_version() -> None:
    installed = importlib.metadata.version("aws-sam-cli")
    if installed != SAM_CLI_VERSION:
        raise SamCliMismatch(
            f"aws-sam-cli {installed} is installed, but devtools/samcli.py patches aws-sam-cli "
            f"{SAM_CLI_VERSION}: re-check whether its two fixes are still needed and still fit (see "
            "its docstring), then update SAM_CLI_VERSION (and the pin in requirements-dev.txt)"
        )


def _runtime_properties() -> list[tuple[type, str, Callable[[Any], Any]]]:
    """Fix 1's targets: InvokeContext's lazy properties (checked, not changed)."""
    check_version()
    try:
        from samcli.commands.local.cli_common.invoke_context import InvokeContext  # type: ignore[import-untyped]  # noqa: PLC0415
    except ImportError as error:
        raise SamCliMismatch(f"SAM CLI has no InvokeContext where fix 1 expects it: {error}") from error

    targets = []
    for name in ("lambda_runtime", "local_lambda_runner"):
        prop = getattr(InvokeContext, name, None)
        if not isinstance(prop, property) or prop.fget is None:
            raise SamCliMismatch(f"SAM CLI's InvokeContext.{name} is not a property: fix 1 does not fit")
        targets.append((InvokeContext, name, prop.fget))
    return targets


def _lambda_image_build() -> tuple[type, Callable[..., Any], inspect.Signature]:
    """Fix 2's target: LambdaImage.build and its signature (checked, not changed)."""
    check_version()
    try:
        from samcli.local.docker.lambda_image import LambdaImage  # type: ignore[import-untyped]  # noqa: PLC0415
    except ImportError as error:
        raise SamCliMismatch(f"SAM CLI has no LambdaImage where fix 2 expects it: {error}") from error

    original = LambdaImage.build
    signature = inspect.signature(original)
    missing = _BUILD_PARAMETERS - set(signature.parameters)
    if missing:
        absent = ", ".join(sorted(missing))
        raise SamCliMismatch(f"SAM CLI's LambdaImage.build takes no {absent}: fix 2 does not fit")
    return LambdaImage, original, signature


def check() -> None:
    """Raise SamCliMismatch unless both fixes fit the installed SAM CLI; changes nothing."""
    _runtime_properties()
    _lambda_image_build()


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
    """How to run ``sam local``: in this interpreter with the fixes when SAM CLI is installed here,
    else the ``sam`` executable. (``-m``: run with the project root as working directory.)"""
    if installed_here():
        return [sys.executable, "-m", "devtools.samcli"]
    return [sam_executable()]


def run_sam_cli(argv: list[str]) -> int:
    """SAM CLI in this process, with both fixes."""
    from samcli.cli.main import cli  # type: ignore[import-untyped]  # noqa: PLC0415

    lock = threading.RLock()
    _thread_safe_runtime(lock)
    _reuse_layer_images(lock)
    sys.argv = ["sam", *argv]
    result = cli.main(args=argv, prog_name="sam")
    return int(result or 0)


def _thread_safe_runtime(lock: Any) -> None:
    def locked(getter: Callable[[Any], Any]) -> property:
        def get(self: Any) -> Any:
            with lock:
                return getter(self)

        return property(get)

    for cls, name, getter in _runtime_properties():
        setattr(cls, name, locked(getter))


def _tree_fingerprint(path: Path) -> str:
    digest = hashlib.sha256(str(path).encode())
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        st = file.stat()
        digest.update(f"{file.relative_to(path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


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
    lambda_image, original, signature = _lambda_image_build()
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

    setattr(lambda_image, "build", build)  # noqa: B010 - a class mypy knows nothing of


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
    local = local_parameters()
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


def main(argv: list[str] | None = None) -> int:
    try:
        return run_sam_cli(sys.argv[1:] if argv is None else argv)
    except SamCliMismatch as error:
        raise SystemExit(f"devtools.samcli: {error}") from None


if __name__ == "__main__":
    sys.exit(main())
