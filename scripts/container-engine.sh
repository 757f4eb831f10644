#!/usr/bin/env bash
# Make a Docker-compatible container engine available for `sam local`.
#
# Usage:
#   scripts/container-engine.sh [start]       ensure an engine; last stdout line is DOCKER_HOST=...
#   scripts/container-engine.sh host-gateway  ensure an engine; print the address that containers use to
#                                             reach this machine (for `sam local ... --add-host NAME:ADDR`)
#   scripts/container-engine.sh status        print DOCKER_HOST=... if our podman service answers, else exit 1
#   scripts/container-engine.sh stop          remove leftover SAM containers and stop the podman service
#                                             this script started
#
# Typical use:
#   export "$(scripts/container-engine.sh | tail -n 1)"
#
# Order of preference:
#   1. Docker (`docker info` works): DOCKER_HOST is passed through unchanged (empty = default socket);
#   2. Finch (`finch info` works): SAM CLI finds Finch by itself, so DOCKER_HOST is printed empty;
#   3. otherwise, on Debian/Ubuntu as root: Debian's podman + runc, with a containers.conf that works
#      where crun ("cgroups in hybrid mode not supported") and podman's default ulimits
#      ("setrlimit ... Operation not permitted") do not, serving the Docker API on a unix socket in the
#      state directory. Needs `apt-get install podman runc` once (done here when missing).
#
# Environment:
#   WECHAT_PODMAN_STATE_DIR  state directory (default: ${XDG_STATE_HOME:-$HOME/.local/state}/wechat-component/podman)
#   CONTAINER_ENGINE         auto (default) | docker | finch | podman: use only that engine
#   ENGINE_WAIT_SECONDS      how long to wait for the podman socket to answer (default 30)
#
# Everything except the result line goes to stderr.
set -euo pipefail

log() { printf 'container-engine: %s\n' "$*" >&2; }
die() {
	printf 'container-engine: error: %s\n' "$*" >&2
	exit 1
}

ACTION="${1:-start}"
ENGINE_PREF="${CONTAINER_ENGINE:-auto}"
STATE_DIR="${WECHAT_PODMAN_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/wechat-component/podman}"
SOCK="$STATE_DIR/podman.sock"
CONF="$STATE_DIR/containers.conf"
PIDFILE="$STATE_DIR/service.pid"
LOGFILE="$STATE_DIR/service.log"
WAIT_SECONDS="${ENGINE_WAIT_SECONDS:-30}"

# ---------------------------------------------------------------------------------------------------
socket_answers() {
	# The Docker API's /_ping answers "OK" (podman's compat API does too).
	[ -S "$SOCK" ] || return 1
	command -v curl >/dev/null 2>&1 || return 1
	[ "$(curl -s --max-time 2 --unix-socket "$SOCK" http://d/_ping 2>/dev/null)" = "OK" ]
}

service_pid() {
	# Prints the pid of the service we started, if that process is still alive.
	local pid
	[ -f "$PIDFILE" ] || return 1
	pid="$(cat "$PIDFILE" 2>/dev/null)" || return 1
	case "$pid" in '' | *[!0-9]*) return 1 ;; esac
	[ -r "/proc/$pid/cmdline" ] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "system service" || return 1
	printf '%s\n' "$pid"
}

docker_works() {
	command -v docker >/dev/null 2>&1 || return 1
	timeout 15 docker info >/dev/null 2>&1
}

finch_works() {
	command -v finch >/dev/null 2>&1 || return 1
	timeout 30 finch info >/dev/null 2>&1
}

remove_sam_containers() {
	# Containers SAM CLI left behind (e.g. warm containers of a killed `sam local start-api`).
	socket_answers || return 0
	local filter='%7B%22label%22%3A%5B%22sam.cli.container.type%22%5D%7D' # {"label":["sam.cli.container.type"]}
	local id
	for id in $(curl -s --max-time 10 --unix-socket "$SOCK" "http://d/containers/json?all=1&filters=$filter" |
		grep -o '"Id":"[0-9a-f]*"' | cut -d'"' -f4); do
		log "removing leftover SAM container ${id:0:12}"
		curl -s --max-time 30 --unix-socket "$SOCK" -X DELETE "http://d/containers/$id?force=1" >/dev/null || true
	done
}

stop_service() {
	local pid i
	if pid="$(service_pid)"; then
		log "stopping podman service (pid $pid)"
		# It runs in its own session (setsid), so its pid is also its process-group id.
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
		for i in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			log "podman service did not stop on SIGTERM, sending SIGKILL"
			kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
		fi
	else
		log "no podman service started by this script is running"
	fi
	rm -f "$PIDFILE"
	if [ -S "$SOCK" ] && ! socket_answers; then rm -f "$SOCK"; fi
}

is_debian_like() {
	[ -r /etc/os-release ] || return 1
	local ids
	# shellcheck disable=SC1091
	ids="$(. /etc/os-release && printf '%s %s' "${ID:-}" "${ID_LIKE:-}")"
	case " $ids " in *" debian "* | *" ubuntu "*) return 0 ;; esac
	return 1
}

apt_install() {
	# apt_install PKG... : install the missing ones, running `apt-get update` only when needed.
	local missing=() p cand need_update=0
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	[ "${#missing[@]}" -eq 0 ] && return 0
	for p in "${missing[@]}"; do
		cand="$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')"
		if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then need_update=1; fi
	done
	if [ "$need_update" = 1 ]; then
		log "running apt-get update"
		DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 || die "apt-get update failed"
	fi
	log "installing ${missing[*]} with apt-get (one-off, may take a minute)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2 ||
		die "apt-get install ${missing[*]} failed; install them by hand, or use Docker"
}

conf_content() {
	cat <<'EOF'
# Written by scripts/container-engine.sh. Debian's crun fails on hybrid cgroups and podman's
# default ulimits cannot be set here, hence runc, cgroupfs and no default ulimits.
[containers]
default_ulimits = []
pids_limit = 0

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
events_logger = "file"
EOF
}

conf_current() {
	[ -f "$CONF" ] && [ "$(cat "$CONF")" = "$(conf_content)" ]
}

write_conf() {
	# Returns 0 if the file was (re)written, 1 if it was already current.
	conf_current && return 1
	local tmp
	tmp="$(mktemp "$STATE_DIR/containers.conf.XXXXXX")"
	conf_content >"$tmp"
	chmod 644 "$tmp"
	mv "$tmp" "$CONF"
	return 0
}

ensure_podman() {
	# Fast path: already set up and running.
	if conf_current && socket_answers; then return 0; fi

	[ "$(uname -s)" = Linux ] || die "no working Docker or Finch found; install Docker Desktop or Finch"
	is_debian_like || die "no working Docker or Finch found, and the automatic podman set-up supports Debian/Ubuntu only; install Docker, Finch, or podman + runc yourself"
	[ "$(id -u)" = 0 ] || die "no working Docker or Finch found; setting up podman needs root (apt-get, rootful podman). Run as root, or install Docker/Finch"
	# Unix socket paths are limited to 107 bytes.
	[ "${#SOCK}" -lt 100 ] || die "socket path too long ($SOCK); set WECHAT_PODMAN_STATE_DIR to a shorter directory"

	if ! command -v podman >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1 || ! command -v curl >/dev/null 2>&1; then
		apt_install podman runc curl
	fi
	command -v podman >/dev/null 2>&1 || die "podman not found after installation"

	mkdir -p "$STATE_DIR"
	chmod 700 "$STATE_DIR"
	if write_conf && service_pid >/dev/null; then
		log "containers.conf changed; restarting the podman service"
		stop_service
	fi
	socket_answers && return 0

	# A service we started earlier may be alive but wedged; replace it.
	if service_pid >/dev/null; then stop_service; fi
	rm -f "$SOCK"

	log "starting podman system service on unix://$SOCK (log: $LOGFILE)"
	CONTAINERS_CONF="$CONF" setsid nohup podman system service --time=0 "unix://$SOCK" \
		>>"$LOGFILE" 2>&1 </dev/null &
	local pid=$!
	echo "$pid" >"$PIDFILE"

	local deadline=$((SECONDS + WAIT_SECONDS))
	until socket_answers; do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 20 "$LOGFILE" >&2 || true
			rm -f "$PIDFILE"
			die "podman system service exited; see $LOGFILE"
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			tail -n 20 "$LOGFILE" >&2 || true
			die "podman socket $SOCK did not answer within ${WAIT_SECONDS}s; see $LOGFILE"
		fi
		sleep 0.2
	done
	log "podman service is up (pid $pid)"
}

# Sets ENGINE_KIND (docker|finch|podman) and ENGINE_HOST (the DOCKER_HOST value to use).
select_engine() {
	case "$ENGINE_PREF" in auto | docker | finch | podman) ;;
	*) die "CONTAINER_ENGINE must be auto, docker, finch or podman (got '$ENGINE_PREF')" ;;
	esac
	# A DOCKER_HOST exported from an earlier run of this script means "our podman".
	if [ "${DOCKER_HOST:-}" != "unix://$SOCK" ]; then
		if [ "$ENGINE_PREF" = auto ] || [ "$ENGINE_PREF" = docker ]; then
			if docker_works; then
				log "using Docker${DOCKER_HOST:+ at $DOCKER_HOST}"
				ENGINE_KIND=docker ENGINE_HOST="${DOCKER_HOST:-}"
				return
			fi
			[ "$ENGINE_PREF" = docker ] && die "CONTAINER_ENGINE=docker but \`docker info\` fails"
		fi
		if [ "$ENGINE_PREF" = auto ] || [ "$ENGINE_PREF" = finch ]; then
			if finch_works; then
				log "using Finch (SAM CLI detects it; DOCKER_HOST left empty)"
				ENGINE_KIND=finch ENGINE_HOST=""
				return
			fi
			[ "$ENGINE_PREF" = finch ] && die "CONTAINER_ENGINE=finch but \`finch info\` fails"
		fi
	fi
	ensure_podman
	ENGINE_KIND=podman ENGINE_HOST="unix://$SOCK"
}

case "$ACTION" in
start)
	select_engine
	echo "DOCKER_HOST=$ENGINE_HOST"
	;;
host-gateway)
	select_engine
	if [ "$ENGINE_KIND" = podman ]; then
		# Gateway of podman's default bridge network (10.88.0.1 unless changed); podman also names it
		# host.containers.internal inside containers. Only host services listening on 0.0.0.0 (or that
		# address) are reachable through it, not those bound to 127.0.0.1.
		gw="$(curl -s --max-time 5 --unix-socket "$SOCK" http://d/networks/podman |
			sed -n 's/.*"Gateway":"\([^"]*\)".*/\1/p')"
		[ -n "$gw" ] || die "cannot read the gateway of podman's default network"
		echo "$gw"
	else
		# Docker >= 20.10 (and Docker Desktop) resolve this keyword in --add-host.
		echo "host-gateway"
	fi
	;;
status)
	if socket_answers; then
		echo "DOCKER_HOST=unix://$SOCK"
		exit 0
	fi
	exit 1
	;;
stop)
	remove_sam_containers
	stop_service
	;;
-h | --help | help)
	sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//' >&2
	;;
*) die "unknown action '$ACTION' (use start, host-gateway, status or stop)" ;;
esac
