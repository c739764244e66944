# docker-enforcer as a host container.
#
#   scripts/build-image [--base IMAGE] [--tag TAG]     builds wheels on the host, then this file (no network)
#   docker build -t docker-enforcer .                  also works from the repository, with network for pip
#
#   docker run -d --name docker_enforcer -p 8888:8888 \
#     --group-add $(stat -c %g /var/run/docker.sock) \
#     --read-only --cap-drop ALL --security-opt no-new-privileges \
#     -v /rules_dir:/opt/docker_enforcer/rules:ro \
#     -v /var/run/docker.sock:/var/run/docker.sock:ro \
#     -v docker-enforcer-state:/var/lib/docker-enforcer \
#     --restart unless-stopped docker-enforcer
#
# The daemon runs as the user `enforcer` (uid and gid 10001), not root: `--group-add` gives it the socket's
# group. The original's line (`--privileged -v /var/run:/var/run`) works with that `--group-add` added;
# --privileged is accepted but not needed: the socket is all the enforcer uses. The legacy builder and
# BuildKit both build this file.

ARG BASE=python:3.11-slim-bookworm

# -- install: a virtualenv with the project and its dependencies ---------------------------------------
FROM ${BASE} AS install
# Labelled so that scripts/build-image can prune this stage's image, left dangling by the legacy builder.
LABEL io.github.docker-enforcer.stage=install
COPY . /src
# Wheels built on the host (scripts/build-image) make this step offline; without them pip uses the index.
RUN set -eu; \
    python3 -m venv /opt/venv; \
    if ls /src/wheels/docker_enforcer-*.whl >/dev/null 2>&1; then \
        /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /src/wheels \
            /src/wheels/docker_enforcer-*.whl; \
    else \
        /opt/venv/bin/pip install --no-cache-dir /src; \
    fi; \
    /opt/venv/bin/pip uninstall --yes pip; \
    /opt/venv/bin/docker-enforcer --version

# -- the image: the base plus the virtualenv; no compiler, no wheels, no sources --------------------------
FROM ${BASE}
LABEL org.opencontainers.image.title="docker-enforcer" \
      org.opencontainers.image.description="Enforces the host owner's rules on every container of a Docker host" \
      org.opencontainers.image.source="https://github.com/piontec/docker-enforcer" \
      org.opencontainers.image.licenses="Apache-2.0"

COPY --from=install /opt/venv /opt/venv

# Nothing is written outside the state volume, so the root filesystem can be read-only: bytecode is
# compiled at install time, and PYTHONDONTWRITEBYTECODE keeps Python from trying to write any more.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    STATE_DB=/var/lib/docker-enforcer/detections.db

# The daemon's user: fixed ids, so that host folders and volumes can be given to it (chown 10001:10001).
# It reaches the Docker socket through the socket's group (`--group-add`), and owns nothing but its state.
RUN groupadd --system --gid 10001 enforcer \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin enforcer

# The original's layout: rules/rules.py, whitelist_rules/whitelist_rules.py and triggers/triggers.py are
# looked up relative to this directory; empty folders mean the packaged defaults. They stay root's, 0755:
# the loader wants every folder above a rules file owned by root or the daemon's user and not writable by
# group or others, and the daemon cannot change them. Detections go to STATE_DB in /var/lib/docker-enforcer
# (a volume, the user's own, 0700); /var/lib/docker-enforcer-peers is the PEERS_DIR of deploy/compose.yaml
# (a named volume mounted there starts out with this folder's owner and mode).
WORKDIR /opt/docker_enforcer
RUN mkdir -p rules whitelist_rules triggers /var/lib/docker-enforcer /var/lib/docker-enforcer-peers \
    && chmod 0755 . rules whitelist_rules triggers /var/lib/docker-enforcer-peers \
    && chmod 0700 /var/lib/docker-enforcer \
    && chown enforcer:enforcer /var/lib/docker-enforcer /var/lib/docker-enforcer-peers
VOLUME ["/var/lib/docker-enforcer"]
USER 10001:10001

EXPOSE 8888

# /healthz is public even with API_TOKEN set; 503 (engine unreachable, event stream down, sweeps late)
# makes urlopen raise, hence exit 1. It follows LISTEN_ADDRESS; 0.0.0.0 and :: are asked on loopback.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["python3", "-c", "import os, urllib.request as u\nhost, _, port = os.environ.get('LISTEN_ADDRESS', '0.0.0.0:8888').strip().rpartition(':')\nhost = host.strip('[]')\nhost = {'': '127.0.0.1', '0.0.0.0': '127.0.0.1', '::': '::1'}.get(host, host)\nhost = f'[{host}]' if ':' in host else host\nu.urlopen(f'http://{host}:{port}/healthz', timeout=4)\n"]

# PID 1 is the daemon itself: it handles SIGTERM (docker stop) and SIGHUP (reload the rules).
ENTRYPOINT ["docker-enforcer"]
CMD ["run"]
