#!/usr/bin/env bash
# Extra tools for the jobs/ and runbook tests (called by .ci/run after
# apt-get update): systemd-analyze verifies and audits the rendered units and
# systemd-cat is what the rendered cron lines log through (package systemd);
# the runbook's lock procedure uses ps and kill (procps). Python's plistlib
# (python3, installed by .ci/run) checks the launchd plists. The clock tests
# run lifeboat under a wrong wall clock with libfaketime (package faketime).
# The man page test renders `lifeboat man` with `man -l` (man-db); git is
# for the provenance test's parent repository and build.rs's commit. The
# rclone remote's tests drive the real rclone (bookworm: 1.60), against its
# local backend and its own WebDAV server on loopback.
set -euo pipefail
apt-get install -y -qq --no-install-recommends systemd procps faketime man-db git rclone >/dev/null
# The real-application corpus (tests/integration/apps.rs): sqldiff compares
# restored databases with their sources (sqlite3-tools), Fossil makes a
# repository, SpatiaLite a spatial database (libsqlite3-mod-spatialite).
# Django and sqlite-utils come from PyPI (.ci/run).
apt-get install -y -qq --no-install-recommends sqlite3-tools fossil libsqlite3-mod-spatialite >/dev/null
