# Sourced by deploy/docker/build and test: makes a Docker engine available and sets
# DOCKER to a client that can build with it (BuildKit without the buildx plugin).
# Installs Debian's docker.io when there is no engine, and starts dockerd when it is not
# running (no init system does it in a container or CI machine).

if [ -z "${DOCKER:-}" ]; then
    # Debian's client matches Debian's engine and has BuildKit built in; a newer client
    # without the buildx plugin refuses DOCKER_BUILDKIT=1.
    if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
fi
export DOCKER DOCKER_BUILDKIT=1

if ! "$DOCKER" info >/dev/null 2>&1; then
    if ! command -v dockerd >/dev/null 2>&1; then
        echo "== installing docker.io (Debian's Docker engine)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
        [ -x /usr/bin/docker ] && DOCKER=/usr/bin/docker
    fi
    if ! "$DOCKER" info >/dev/null 2>&1; then
        echo "== starting dockerd"
        nohup dockerd >/tmp/roam-notify-dockerd.log 2>&1 &
        for _ in $(seq 1 60); do
            "$DOCKER" info >/dev/null 2>&1 && break
            sleep 1
        done
    fi
    if ! "$DOCKER" info >/dev/null 2>&1; then
        echo "error: the Docker engine did not start; see /tmp/roam-notify-dockerd.log" >&2
        tail -n 20 /tmp/roam-notify-dockerd.log >&2 || true
        exit 1
    fi
fi
