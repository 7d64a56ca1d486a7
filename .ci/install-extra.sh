#!/usr/bin/env bash
# Extra tools for the jobs/ tests (called by .ci/run after apt-get update):
# systemd-analyze verifies and audits the rendered units, systemd-cat is
# what the rendered cron lines log through. Python's plistlib (python3,
# installed by .ci/run) checks the launchd plists.
set -euo pipefail
apt-get install -y -qq --no-install-recommends systemd >/dev/null
