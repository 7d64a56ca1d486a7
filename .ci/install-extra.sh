#!/usr/bin/env bash
# Extra tools for the jobs/ and runbook tests (called by .ci/run after
# apt-get update): systemd-analyze verifies and audits the rendered units and
# systemd-cat is what the rendered cron lines log through (package systemd);
# the runbook's lock procedure uses ps and kill (procps). Python's plistlib
# (python3, installed by .ci/run) checks the launchd plists. The clock tests
# run lifeboat under a wrong wall clock with libfaketime (package faketime).
set -euo pipefail
apt-get install -y -qq --no-install-recommends systemd procps faketime >/dev/null
