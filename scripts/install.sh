#!/bin/sh
# Set up hds-compliance in ./.venv on a fresh Debian machine (idempotent).
#   sh scripts/install.sh          runtime only (non-editable install, as users get it)
#   sh scripts/install.sh dev      plus what the tests need: the Debian packages of scripts/test-packages.txt
set -eu
cd "$(dirname "$0")/.."
want_dev=${1:-}

packages=""
python3 -c 'import venv, ensurepip' 2>/dev/null || packages="$packages python3-venv python3-pip"
if [ "$want_dev" = dev ]; then
    # What the tests run for real: sshd hosts, sudo, namespaces, TLS servers' certificates (openssl),
    # Chromium for the HTML report.
    for p in $(grep -v '^#' scripts/test-packages.txt); do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || packages="$packages $p"
    done
fi
if [ -n "$packages" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "install.sh: needs root to install:$packages" >&2
        exit 1
    fi
    apt-get update -qq
    # shellcheck disable=SC2086 # word splitting of the package list is intended
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
rm -rf build  # setuptools reuses build/lib: a module deleted from the tree would ship again
.venv/bin/python -m pip install -q --upgrade pip
if [ "$want_dev" = dev ]; then
    .venv/bin/python -m pip install -q --force-reinstall --no-deps . && .venv/bin/python -m pip install -q ".[dev]"
else
    .venv/bin/python -m pip install -q --force-reinstall --no-deps . && .venv/bin/python -m pip install -q .
fi
if [ "$want_dev" = dev ]; then
    # compliance-trestle reads the OSCAL the tests write; it pins a paramiko pyinfra refuses: its own venv
    [ -x .venv-oscal/bin/python ] || python3 -m venv .venv-oscal
    .venv-oscal/bin/python -m pip install -q "compliance-trestle>=5,<6"
fi
