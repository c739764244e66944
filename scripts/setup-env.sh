# Shared setup for scripts/test and scripts/demo (sourced, not run): Debian packages and the .venv.

# apt-get install, without letting docker.io start the host's own dockerd: the tests never use it,
# and it would add a bridge and iptables rules. A policy-rc.d that exits 101 forbids service starts.
install_without_starting_services() {
    local policy=/usr/sbin/policy-rc.d created="" status=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        created=1
    fi
    apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" || status=$?
    if [ -n "$created" ]; then
        rm -f "$policy"
    fi
    return "$status"
}

# ensure_packages PKG...: install (as root) those of the Debian packages that are missing.
ensure_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$pkg")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing Debian packages ${missing[*]} and not root: install them first" >&2
        return 0
    fi
    echo "installing ${missing[*]}" >&2
    install_without_starting_services "${missing[@]}"
}

# setup_env EXTRAS: .venv with the project installed (editable), with the given extras ("" or "test").
setup_env() {
    local extras=$1
    if ! python3 -c "import ensurepip, venv" >/dev/null 2>&1; then
        ensure_packages python3-venv
    fi
    if [ ! -x .venv/bin/python ]; then
        python3 -m venv .venv
    fi
    if [ -n "$extras" ]; then
        .venv/bin/pip install -q -e ".[$extras]"
    else
        .venv/bin/pip install -q -e .
    fi
}
