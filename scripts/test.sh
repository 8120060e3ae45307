#!/bin/sh
# Everything CI runs: set-up on a fresh Debian machine, lint, type-check, tests.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install.sh dev
.venv/bin/ruff check hds_compliance checks tests bench
.venv/bin/ruff format --check hds_compliance checks tests bench
.venv/bin/mypy
# The installed package (not the source tree) is what the tests import: run pytest from the venv, not -m.
.venv/bin/pytest -q "$@"
