#!/usr/bin/env bash
# Ensure the Lambda base image that `sam local` (SAM CLI 1.170, runtime python3.12, x86_64) asks for
# exists in the container engine given by DOCKER_HOST:
#
#   public.ecr.aws/lambda/python:3.12-x86_64
#
# (python3.12 has images for two architectures, so SAM CLI always asks for the "-x86_64"/"-arm64" tag,
# never the bare "3.12" one; see samcli/local/docker/lambda_image.py, Runtime.get_image_name_tag.)
#
# If the image is present, nothing is done. Otherwise it is pulled (short timeout), and if that fails
# (no route to public.ecr.aws) a compatible image is built offline:
#   /var/lang      CPython 3.12 taken from this machine (python3.12 on PATH, else pyenv's 3.12.x),
#                  without its test suite, tkinter, idle, site-packages, static libs;
#   shared libs    whatever the interpreter, its extension modules and the shell tools link to (ldd);
#   /var/runtime   awslambdaric + boto3/botocore (pip --target, pinned) and a bootstrap script;
#   /bin/sh + a few coreutils, because SAM CLI adds its runtime interface emulator with a Dockerfile
#                  that runs `mv`, `chmod`, `cp`, `rm`;
#   image config   as the official image: ENV PATH/LD_LIBRARY_PATH/LAMBDA_TASK_ROOT/LAMBDA_RUNTIME_DIR,
#                  WORKDIR /var/task, ENTRYPOINT /lambda-entrypoint.sh.
#
# Usage:  DOCKER_HOST=... scripts/lambda-base-image.sh [--force] [--no-pull]
#   --force    rebuild/re-pull even if the image exists, and drop SAM's derived images built from it
#   --no-pull  do not try to pull; build offline straight away
# Environment:
#   DOCKER_HOST               engine to use (see scripts/container-engine.sh); empty = Docker's default
#   LAMBDA_PYTHON             python3.12 interpreter to copy (default: found as described above)
#   LAMBDA_PULL_TIMEOUT       seconds allowed for the pull attempt (default 20)
#   AWSLAMBDARIC_VERSION      default 4.2.2
#   BOTO3_VERSION / BOTOCORE_VERSION   default: the versions installed in the project's .venv
# Progress goes to stderr; on success the image name is printed on stdout.
set -euo pipefail

log() { printf 'lambda-base-image: %s\n' "$*" >&2; }
die() { printf 'lambda-base-image: error: %s\n' "$*" >&2; exit 1; }

IMAGE="public.ecr.aws/lambda/python:3.12-x86_64"
# Images SAM CLI derives from it (ADD of the emulator, layers); stale once the base changes.
# (podman lists short names with a "docker.io/" prefix, hence the leading "*".)
DERIVED_PATTERNS=("*public.ecr.aws/lambda/python:3.12-rapid-x86_64" "*samcli/lambda-python:3.12-x86_64-*")
PY_SERIES="3.12"
AWSLAMBDARIC_VERSION="${AWSLAMBDARIC_VERSION:-4.2.2}"
PULL_TIMEOUT="${LAMBDA_PULL_TIMEOUT:-20}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

FORCE=0
PULL=1
for arg in "$@"; do
	case "$arg" in
	--force) FORCE=1 ;;
	--no-pull) PULL=0 ;;
	-h | --help)
		sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//' >&2
		exit 0
		;;
	*) die "unknown argument '$arg'" ;;
	esac
done

# ---------------------------------------------------------------------------------------------
# Talking to the engine
# ---------------------------------------------------------------------------------------------
DOCKER_HOST="${DOCKER_HOST:-}"
SOCK=""
case "$DOCKER_HOST" in
unix://*) SOCK="${DOCKER_HOST#unix://}" ;;
"") [ -S /var/run/docker.sock ] && SOCK=/var/run/docker.sock ;;
esac

api_get() { # api_get PATH -> body on stdout, fails on HTTP errors
	curl -sf --max-time 10 --unix-socket "$SOCK" "http://d$1"
}

image_exists() {
	if [ -n "$SOCK" ] && command -v curl >/dev/null 2>&1; then
		# Docker API: GET /images/{name}/json -> 200 if present (podman's compat API too).
		api_get "/images/${IMAGE}/json" >/dev/null 2>&1
	else
		"${ENGINE[@]}" image inspect "$IMAGE" >/dev/null 2>&1
	fi
}

# The CLI used for pull/import/tag/rm: podman (remote, on the same socket) when the engine is podman,
# else docker (honours DOCKER_HOST).
ENGINE=()
select_engine_cli() {
	if [ -n "$SOCK" ] && command -v podman >/dev/null 2>&1 && command -v curl >/dev/null 2>&1 &&
		api_get /version 2>/dev/null | grep -qi podman; then
		ENGINE=(podman --url "unix://$SOCK")
	elif command -v docker >/dev/null 2>&1 && timeout 15 docker version >/dev/null 2>&1; then
		ENGINE=(docker)
	elif [ -z "$DOCKER_HOST" ] && command -v finch >/dev/null 2>&1; then
		ENGINE=(finch)
	else
		die "no container engine answers (DOCKER_HOST='${DOCKER_HOST}'); run: export \"\$(scripts/container-engine.sh | tail -n 1)\""
	fi
}

# Fast path: nothing to do.
if [ "$FORCE" = 0 ] && [ -n "$SOCK" ] && command -v curl >/dev/null 2>&1 && image_exists; then
	log "$IMAGE is present"
	echo "$IMAGE"
	exit 0
fi

select_engine_cli
log "engine: ${ENGINE[*]}"

# Serialise concurrent runs (parallel test jobs) on one machine.
LOCK_FILE="${TMPDIR:-/tmp}/lambda-base-image-python3.12-x86_64.lock"
if command -v flock >/dev/null 2>&1; then
	exec 9>"$LOCK_FILE"
	flock 9
fi

if [ "$FORCE" = 0 ] && image_exists; then
	log "$IMAGE is present"
	echo "$IMAGE"
	exit 0
fi

remove_derived_images() {
	local ref pat
	"${ENGINE[@]}" images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | while read -r ref; do
		for pat in "${DERIVED_PATTERNS[@]}"; do
			# shellcheck disable=SC2053 # glob match intended
			if [[ "$ref" == $pat ]]; then
				log "removing derived image $ref"
				"${ENGINE[@]}" rmi -f "$ref" >/dev/null 2>&1 || true
			fi
		done
	done || true
}

if [ "$PULL" = 1 ]; then
	log "trying: ${ENGINE[*]} pull $IMAGE (timeout ${PULL_TIMEOUT}s)"
	if timeout "$PULL_TIMEOUT" "${ENGINE[@]}" pull --platform linux/amd64 "$IMAGE" >&2; then
		[ "$FORCE" = 1 ] && remove_derived_images
		log "pulled $IMAGE"
		echo "$IMAGE"
		exit 0
	fi
	log "pull failed; building a compatible image offline"
fi

# ---------------------------------------------------------------------------------------------
# Offline build
# ---------------------------------------------------------------------------------------------
START=$SECONDS
[ "$(uname -m)" = x86_64 ] || die "the offline build copies this machine's CPython, so it needs an x86_64 machine (this is $(uname -m))"
for tool in ldd tar; do
	command -v "$tool" >/dev/null 2>&1 || die "'$tool' is needed for the offline build"
done

is_py312() { [ -n "$1" ] && "$1" -c "import sys; sys.exit(sys.version_info[:2] != (3, 12))" >/dev/null 2>&1; }

find_python() {
	local cand root
	if [ -n "${LAMBDA_PYTHON:-}" ]; then
		is_py312 "$LAMBDA_PYTHON" || die "LAMBDA_PYTHON=$LAMBDA_PYTHON is not a working Python $PY_SERIES"
		echo "$LAMBDA_PYTHON"
		return
	fi
	if cand="$(command -v python3.12 2>/dev/null)" && is_py312 "$cand"; then
		echo "$cand"
		return
	fi
	if command -v pyenv >/dev/null 2>&1 && root="$(pyenv root 2>/dev/null)"; then
		for cand in $(ls -d "$root"/versions/3.12*/bin/python3.12 2>/dev/null | sort -rV); do
			if is_py312 "$cand"; then
				echo "$cand"
				return
			fi
		done
	fi
	return 1
}

PY_FOUND="$(find_python)" || die "no Python $PY_SERIES found (tried python3.12 on PATH and \$(pyenv root)/versions/3.12*); install one (e.g. pyenv install 3.12) or set LAMBDA_PYTHON"
# Resolve a venv's python to the base installation it was made from.
PY_INFO="$("$PY_FOUND" -c '
import os, sys, sysconfig
prefix = os.path.realpath(sys.base_prefix)
exe = os.path.join(prefix, "bin", "python3.12")
if not os.path.exists(exe):
    exe = getattr(sys, "_base_executable", sys.executable)
print(prefix, os.path.realpath(sysconfig.get_paths()["stdlib"]), os.path.realpath(exe),
      "%d.%d.%d" % sys.version_info[:3], sep="\n")
')" || die "cannot inspect $PY_FOUND"
{ read -r PY_PREFIX; read -r PY_STDLIB; read -r PY_BIN; read -r PY_VERSION; } <<<"$PY_INFO"
case "$PY_STDLIB" in "$PY_PREFIX"/*) ;; *) die "unexpected layout of $PY_FOUND (stdlib $PY_STDLIB not under $PY_PREFIX)" ;; esac
STDLIB_REL="${PY_STDLIB#"$PY_PREFIX"/}" # e.g. lib/python3.12
log "using CPython $PY_VERSION from $PY_PREFIX"

# pip: the interpreter's own, else the project's venv (also 3.12) with an explicit target platform.
if "$PY_FOUND" -m pip --version >/dev/null 2>&1; then
	PIP=("$PY_FOUND" -m pip)
elif [ -x "$REPO_ROOT/.venv/bin/python" ] && "$REPO_ROOT/.venv/bin/python" -m pip --version >/dev/null 2>&1; then
	PIP=("$REPO_ROOT/.venv/bin/python" -m pip)
else
	die "no pip for Python $PY_SERIES found"
fi
PIP_PLATFORM=(--only-binary=:all: --implementation cp --python-version 3.12 --platform manylinux2014_x86_64)

venv_version() {
	[ -x "$REPO_ROOT/.venv/bin/python" ] || return 1
	"$REPO_ROOT/.venv/bin/python" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$1" 2>/dev/null
}
BOTO3_VERSION="${BOTO3_VERSION:-$(venv_version boto3 || true)}"
BOTOCORE_VERSION="${BOTOCORE_VERSION:-$(venv_version botocore || true)}"
RUNTIME_REQS=("awslambdaric==$AWSLAMBDARIC_VERSION")
if [ -n "$BOTO3_VERSION" ]; then RUNTIME_REQS+=("boto3==$BOTO3_VERSION"); else RUNTIME_REQS+=(boto3); fi
[ -n "$BOTOCORE_VERSION" ] && RUNTIME_REQS+=("botocore==$BOTOCORE_VERSION")

WORK="$(mktemp -d "${TMPDIR:-/tmp}/lambda-base-image.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
ROOT="$WORK/rootfs"
mkdir -p "$ROOT"/{var/lang/bin,var/lang/lib,var/runtime,var/task,opt,tmp,etc,usr/bin,usr/local/bin,lib64,usr/lib64,root}
chmod 1777 "$ROOT/tmp"
ln -s usr/bin "$ROOT/bin"

# --- CPython --------------------------------------------------------------------------------
log "copying CPython (without tests, tkinter, idle, site-packages, caches)"
cp -p "$PY_BIN" "$ROOT/var/lang/bin/python3.12"
ln -s python3.12 "$ROOT/var/lang/bin/python3"
ln -s python3.12 "$ROOT/var/lang/bin/python"
mkdir -p "$ROOT/var/lang/$STDLIB_REL"
tar -C "$PY_STDLIB" -cf - \
	--exclude='./test' --exclude='./idlelib' --exclude='./tkinter' --exclude='./turtledemo' \
	--exclude='./turtle.py' --exclude='./lib2to3' --exclude='./ensurepip' --exclude='./config-3.12*' \
	--exclude='./site-packages' --exclude='./dist-packages' --exclude='__pycache__' \
	--exclude='./lib-dynload/_tkinter*' --exclude='./lib-dynload/_test*' --exclude='./lib-dynload/xxlimited*' \
	--exclude='./lib-dynload/_xxtestfuzz*' --exclude='./lib-dynload/_ctypes_test*' --exclude='*/tests' \
	--exclude='./unittest/test' --exclude='./sqlite3/test' --exclude='./ctypes/test' \
	. | tar -C "$ROOT/var/lang/$STDLIB_REL" -xf -
mkdir -p "$ROOT/var/lang/$STDLIB_REL/site-packages"

# --- awslambdaric + boto3 ---------------------------------------------------------------------
log "pip install --target /var/runtime ${RUNTIME_REQS[*]}"
PIP_ROOT_USER_ACTION=ignore "${PIP[@]}" install -q --disable-pip-version-check --no-compile --no-warn-script-location \
	--target "$ROOT/var/runtime" "${PIP_PLATFORM[@]}" "${RUNTIME_REQS[@]}" >&2 ||
	die "pip install of the runtime packages failed (PyPI reachable?)"
rm -rf "$ROOT/var/runtime/bin"
find "$ROOT/var/runtime" -depth -type d \( -name __pycache__ -o -name tests -o -name test \) -exec rm -rf {} +

cat >"$ROOT/var/runtime/bootstrap" <<'EOF'
#!/bin/sh
# Lambda runtime bootstrap (python3.12), started by the runtime interface emulator.
export AWS_EXECUTION_ENV="${AWS_EXECUTION_ENV:-AWS_Lambda_python3.12}"
export PYTHONPATH="/var/task:/opt/python/lib/python3.12/site-packages:/opt/python:/var/runtime${PYTHONPATH:+:$PYTHONPATH}"
handler="${_HANDLER:-${AWS_LAMBDA_FUNCTION_HANDLER:-}}"
if [ -n "${AWS_LAMBDA_EXEC_WRAPPER:-}" ]; then
	exec "$AWS_LAMBDA_EXEC_WRAPPER" /var/lang/bin/python3.12 -m awslambdaric "$handler"
fi
exec /var/lang/bin/python3.12 -m awslambdaric "$handler"
EOF
chmod 755 "$ROOT/var/runtime/bootstrap"

# Same contract as the official image's entry point (SAM CLI replaces it with its own emulator).
cat >"$ROOT/lambda-entrypoint.sh" <<'EOF'
#!/bin/sh
if [ $# -ne 1 ]; then
	echo "entrypoint requires the handler name to be the first argument" 1>&2
	exit 142
fi
export _HANDLER="$1"
RUNTIME_ENTRYPOINT=/var/runtime/bootstrap
if [ -z "${AWS_LAMBDA_RUNTIME_API:-}" ]; then
	exec /usr/local/bin/aws-lambda-rie "$RUNTIME_ENTRYPOINT"
else
	exec "$RUNTIME_ENTRYPOINT"
fi
EOF
chmod 755 "$ROOT/lambda-entrypoint.sh"

# The emulator for standalone `docker run -p 9000:8080 IMAGE app.handler`, from the installed SAM CLI.
RIE=""
for sampy in "$REPO_ROOT/.venv/bin/python" "$(command -v sam 2>/dev/null | xargs -r dirname)/python"; do
	[ -x "$sampy" ] || continue
	RIE="$("$sampy" -c 'import os, samcli; print(os.path.join(os.path.dirname(samcli.__file__), "local", "rapid", "aws-lambda-rie-x86_64"))' 2>/dev/null)" || RIE=""
	[ -f "$RIE" ] && break
	RIE=""
done
if [ -n "$RIE" ]; then
	cp "$RIE" "$ROOT/usr/local/bin/aws-lambda-rie"
	chmod 755 "$ROOT/usr/local/bin/aws-lambda-rie"
else
	log "note: SAM CLI's aws-lambda-rie not found; the image works with sam local only"
fi

# --- shell and the tools SAM's Dockerfile and shell scripts use --------------------------------
TOOLS=(mv cp rm mkdir rmdir ln ls cat chmod chown touch env id uname head tail true false sleep tr cut
	wc sort dirname basename readlink realpath printf test mktemp date du stat tee grep sed)
resolve_tool() { # prints the real path of a host tool, or nothing
	local p
	p="$(command -v "$1" 2>/dev/null)" || return 0
	case "$p" in /*) readlink -f "$p" ;; esac
}
BUSYBOX="$(resolve_tool busybox)"
if [ -n "$BUSYBOX" ] && ! ldd "$BUSYBOX" >/dev/null 2>&1; then
	# A static busybox: one file provides sh and all the tools.
	log "using static busybox for /bin/sh and tools"
	cp "$BUSYBOX" "$ROOT/usr/bin/busybox"
	for t in sh "${TOOLS[@]}"; do
		[ -e "$ROOT/usr/bin/$t" ] || ln -s busybox "$ROOT/usr/bin/$t"
	done
else
	log "using this machine's /bin/sh and coreutils"
	SH="$(readlink -f /bin/sh)"
	cp "$SH" "$ROOT/usr/bin/$(basename "$SH")"
	[ "$(basename "$SH")" = sh ] || ln -s "$(basename "$SH")" "$ROOT/usr/bin/sh"
	for t in "${TOOLS[@]}"; do
		src="$(resolve_tool "$t")"
		[ -n "$src" ] && [ -f "$src" ] || continue
		# Multi-call binaries (e.g. coreutils --enable-single-binary) need their own name.
		name="$(basename "$src")"
		[ -e "$ROOT/usr/bin/$name" ] || cp "$src" "$ROOT/usr/bin/$name"
		[ "$name" = "$t" ] || [ -e "$ROOT/usr/bin/$t" ] || ln -s "$name" "$ROOT/usr/bin/$t"
	done
fi

# --- shared libraries (ldd closure) -------------------------------------------------------------
log "collecting shared libraries"
LIBLIST="$WORK/libs"
: >"$LIBLIST"
while IFS= read -r -d '' f; do
	# ldd fails on non-dynamic files (scripts, static binaries); ignore those.
	ldd "$f" 2>/dev/null >>"$LIBLIST" || true
done < <(find "$ROOT/var/lang" "$ROOT/var/runtime" "$ROOT/usr/bin" -type f \( -name '*.so*' -o -perm -u+x \) -print0)
MISSING="$(grep 'not found' "$LIBLIST" | awk '{print $1}' | sort -u | tr '\n' ' ' || true)"
# Libraries bundled in the tree (e.g. awslambdaric.libs, libpython) need no copy.
awk '/=>/ && $3 ~ /^\// {print $3} !/=>/ && $1 ~ /^\// {print $1}' "$LIBLIST" | sort -u |
	while read -r lib; do
		case "$lib" in "$ROOT"/* | "$PY_PREFIX"/*) continue ;; esac
		dest="$ROOT$lib"
		[ -e "$dest" ] && continue
		mkdir -p "$(dirname "$dest")"
		cp -L "$lib" "$dest"
	done
# libpython (shared builds) goes to /var/lang/lib, where the interpreter's relative RPATH and
# LD_LIBRARY_PATH find it.
awk '/=>/ {print $3}' "$LIBLIST" | sort -u | while read -r lib; do
	case "$lib" in "$PY_PREFIX"/*) cp -L "$lib" "$ROOT/var/lang/lib/$(basename "$lib")" ;; esac
done
if [ -n "$MISSING" ]; then
	# Only the ones not satisfied from inside the image matter.
	still=""
	for m in $MISSING; do
		[ -n "$(find "$ROOT/var/lang/lib" "$ROOT/var/runtime" -name "$m" -print -quit)" ] || still="$still $m"
	done
	[ -z "$still" ] || log "warning: libraries not found on this machine:$still"
fi
# A loader cache, so binaries find their libraries even without LD_LIBRARY_PATH.
LDCONFIG="$(command -v ldconfig 2>/dev/null || ls /sbin/ldconfig /usr/sbin/ldconfig 2>/dev/null | head -n 1 || true)"
if [ -n "$LDCONFIG" ]; then
	{
		find "$ROOT/lib" "$ROOT/lib64" "$ROOT/usr/lib" "$ROOT/usr/lib64" -name '*.so*' -type f 2>/dev/null |
			xargs -r -n1 dirname | sed "s|^$ROOT||" || true
		printf '%s\n' /var/lang/lib /lib64 /usr/lib64
	} | awk '!seen[$0]++' >"$ROOT/etc/ld.so.conf"
	"$LDCONFIG" -r "$ROOT" 2>/dev/null || log "note: ldconfig -r failed; relying on LD_LIBRARY_PATH"
fi

# Debug symbols of a locally built CPython (e.g. pyenv's) are most of its size.
if command -v strip >/dev/null 2>&1; then
	find "$ROOT/var/lang" -type f \( -name '*.so' -o -name '*.so.*' -o -path '*/bin/python3.12' \) \
		-exec strip --strip-debug {} + 2>/dev/null || log "note: strip failed; image is larger but fine"
fi

# --- small /etc -----------------------------------------------------------------------------------
cat >"$ROOT/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
sbx_user1051:x:993:990::/home/sbx_user1051:/sbin/nologin
nobody:x:65534:65534:nobody:/:/sbin/nologin
EOF
cat >"$ROOT/etc/group" <<'EOF'
root:x:0:
sbx_user1051:x:990:
nobody:x:65534:
EOF
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$ROOT/etc/nsswitch.conf"
: >"$ROOT/etc/hosts"
: >"$ROOT/etc/resolv.conf"
printf 'NAME="Lambda python3.12 compatible (offline build)"\nID=lambda-offline\n' >"$ROOT/etc/os-release"
# CA bundle where this OpenSSL looks by default, and where Amazon Linux keeps it.
CA_SRC="$("$PY_FOUND" -c 'import ssl; p = ssl.get_default_verify_paths(); print(p.cafile or "")' 2>/dev/null || true)"
OPENSSL_CAFILE="$("$PY_FOUND" -c 'import ssl; print(ssl.get_default_verify_paths().openssl_cafile)' 2>/dev/null || true)"
if [ -n "$CA_SRC" ] && [ -f "$CA_SRC" ]; then
	for dest in /etc/pki/tls/certs/ca-bundle.crt "$OPENSSL_CAFILE" "$CA_SRC"; do
		[ -n "$dest" ] || continue
		mkdir -p "$ROOT$(dirname "$dest")"
		[ -e "$ROOT$dest" ] || cp -L "$CA_SRC" "$ROOT$dest"
	done
fi

# --- byte-compile (faster cold starts; paths recorded as inside the image) -------------------------
log "byte-compiling the standard library and /var/runtime"
"$PY_FOUND" -m compileall -q -j 0 -o 0 -s "$ROOT" -p / \
	-x '(/site-packages/|lib2to3|/test/)' "$ROOT/var/lang/$STDLIB_REL" "$ROOT/var/runtime" >/dev/null ||
	log "note: byte-compilation reported errors (harmless for unused modules)"

# --- smoke test with the host kernel but the image's tree (no engine needed) ----------------------
CHROOT="$(command -v chroot 2>/dev/null || true)"
if [ -n "$CHROOT" ] && [ "$(id -u)" = 0 ]; then
	if ! env -i PATH=/var/lang/bin:/usr/bin:/bin PYTHONPATH=/var/runtime LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64 \
		"$CHROOT" "$ROOT" /var/lang/bin/python3.12 -c 'import ssl, sqlite3, ctypes, json, zlib, lzma, bz2, decimal, uuid, awslambdaric, boto3' >&2; then
		die "the assembled tree fails its smoke test (see the error above)"
	fi
fi

# --- import -----------------------------------------------------------------------------------------
LD_PATH="/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib"
CHANGES=(
	--change "ENV LANG=en_US.UTF-8"
	--change "ENV TZ=:/etc/localtime"
	--change "ENV PATH=/var/lang/bin:/usr/local/bin:/usr/bin:/bin:/opt/bin"
	--change "ENV LD_LIBRARY_PATH=$LD_PATH"
	--change "ENV LAMBDA_TASK_ROOT=/var/task"
	--change "ENV LAMBDA_RUNTIME_DIR=/var/runtime"
	--change "WORKDIR /var/task"
	--change 'ENTRYPOINT ["/lambda-entrypoint.sh"]'
	--change "LABEL org.opencontainers.image.description=offline-built-python3.12-lambda-base"
	--change "LABEL wechat-component.python-source=CPython-$PY_VERSION"
)
SIZE="$(du -sh "$ROOT" | cut -f1)"
log "importing $SIZE root file system as $IMAGE"
OLD_ID="$("${ENGINE[@]}" image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
[ "$FORCE" = 1 ] && remove_derived_images
tar -C "$ROOT" --numeric-owner --owner=0 --group=0 -cf - . |
	"${ENGINE[@]}" import "${CHANGES[@]}" - "$IMAGE" >&2 || die "image import failed"
image_exists || die "import reported success but $IMAGE is not listed"
if [ -n "$OLD_ID" ]; then
	# The image this one replaces, now untagged; kept only if something still uses it.
	"${ENGINE[@]}" rmi "$OLD_ID" >/dev/null 2>&1 || true
fi
log "built $IMAGE offline in $((SECONDS - START))s"
echo "$IMAGE"
