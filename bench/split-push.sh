#!/usr/bin/env bash
# Benchmark: a real archive over 2 GiB through the GitHub emulator (issue 15,
# item 6). A database of incompressible rows larger than 2 GiB is snapshotted
# and pushed with the real gh as parts of one release (GitHub takes assets
# under 2 GiB only), then restored from the remote on a fresh data directory,
# the parts read one after the other and never joined on disk. The baseline,
# timed in the same script, is what a user would do by hand: `gh release
# download` every part, `cat` them into `tar xzf -`, and `PRAGMA
# integrity_check`. Only the ratios mean anything; absolute times depend on
# the machine and what else it is doing.
#
#   bash bench/split-push.sh [SIZE_MIB] [WORK_DIR]     # default 2200 MiB
#
# Needs: a release build (cargo build --release), gh, python3, sqlite3, tar,
# gzip, and about 8 x SIZE of free disk in WORK_DIR. Not part of CI (minutes,
# gigabytes): the integration test `remote::a_split_archive_is_pushed_listed_
# verified_and_restored` checks the same path with a 4 KiB part size.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${1:-2200}
WORK=$(realpath -m "${2:-target/bench-split}")
LIFEBOAT=$PWD/target/release/lifeboat
GH=${GH:-$(command -v gh)}
[ -x "$LIFEBOAT" ] || { echo "build first: cargo build --release" >&2; exit 2; }

rm -rf "$WORK" && mkdir -p "$WORK/app/data" "$WORK/fresh/data" "$WORK/by-hand"
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }

# The emulator, and gh pointed at it (as tests/support/gh.rs does).
python3 tests/support/gh_emulator.py --state-dir "$WORK/emulator" --repo o/r >"$WORK/emulator.port" &
EMU=$!
trap 'kill $EMU 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q PORT "$WORK/emulator.port" 2>/dev/null && break; sleep 0.1; done
PORT=$(sed -n 's/^PORT //p' "$WORK/emulator.port")
mkdir -p "$WORK/gh-config"
unset GITHUB_TOKEN GH_ENTERPRISE_TOKEN GITHUB_ENTERPRISE_TOKEN http_proxy https_proxy no_proxy GH_REPO
export GH_HOST=github.localhost GH_TOKEN=lifeboat-bench GH_CONFIG_DIR="$WORK/gh-config" \
    HTTP_PROXY="http://127.0.0.1:$PORT" NO_PROXY=""

# A database of incompressible 1 MiB rows, SIZE_MIB of them.
t=$(now)
sqlite3 "$WORK/app/data/big.db" "PRAGMA journal_mode=WAL; CREATE TABLE blobs(id INTEGER PRIMARY KEY, b BLOB);
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $SIZE_MIB)
  INSERT INTO blobs(b) SELECT randomblob(1048576) FROM n;" >/dev/null
echo "generated $(du -h "$WORK/app/data/big.db" | cut -f1) in $(since "$t") s"

for dir in app fresh; do
    cat >"$WORK/$dir/lifeboat.toml" <<EOF
installation = "bench"
data_dir = "data"
backup_dir = "backups"
[[database]]
name = "big"
path = "big.db"
[snapshot]
level = 1
[github]
repo = "o/r"
gh = "$GH"
timeout = "30m"
EOF
done

# 1. Snapshot and push (in parts).
t=$(now)
"$LIFEBOAT" --config "$WORK/app/lifeboat.toml" snapshot
SNAP=$(since "$t")
TAG=$(ls "$WORK/app/backups" | sed -n 's/\.tar\.gz$//p' | head -1)
ARCHIVE_BYTES=$(stat -c %s "$WORK/app/backups/$TAG.tar.gz")
PARTS=$(gh release view "$TAG" -R o/r --json assets --jq '.assets | length')
echo "snapshot and push: $SNAP s, archive $ARCHIVE_BYTES bytes in $PARTS part(s)"
[ "$PARTS" -ge 2 ] || { echo "expected the archive to be split" >&2; exit 1; }

# 2. lifeboat restore from GitHub on a fresh machine (streams the parts).
t=$(now)
"$LIFEBOAT" --config "$WORK/fresh/lifeboat.toml" restore latest --from github
RESTORE=$(since "$t")
ROWS=$(sqlite3 "$WORK/fresh/data/big.db" "SELECT count(*) FROM blobs")
[ "$ROWS" = "$SIZE_MIB" ] || { echo "restored $ROWS rows, expected $SIZE_MIB" >&2; exit 1; }

# 3. Baseline, by hand: download every part, cat | tar xzf, integrity_check.
t=$(now)
gh release download "$TAG" -R o/r -D "$WORK/by-hand/parts"
cat "$WORK/by-hand/parts/"*.part-* | tar xzf - -C "$WORK/by-hand"
sqlite3 "$WORK/by-hand/$TAG/big.db" "PRAGMA integrity_check" | grep -qx ok
BASELINE=$(since "$t")

echo
echo "| step | seconds |"
echo "| --- | ---: |"
echo "| lifeboat snapshot + push ($PARTS parts) | $SNAP |"
echo "| lifeboat restore --from github (parts streamed, all checks) | $RESTORE |"
echo "| by hand: gh download + cat | tar xzf + integrity_check | $BASELINE |"
echo
echo "restore / by hand: $(echo "scale=3; $RESTORE / $BASELINE" | bc)x"
echo "joined archive written by the restore: none (the parts are read in order)"
