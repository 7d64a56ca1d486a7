#!/usr/bin/env bash
# Is `rust-version` in Cargo.toml honest? Only one toolchain exists on the CI
# machine (rustup cannot fetch others), so this cannot build with the
# declared version. What it checks instead:
#   1. cargo accepts the field (`cargo metadata --locked` parses it);
#   2. no locked dependency declares a newer rust-version than ours (cargo
#      would refuse to build them with the declared toolchain);
#   3. the declared version is not older than the newest language/std
#      feature lifeboat is known to use (the table below, each found by a
#      pattern in src/; extend it when adopting a newer feature);
#   4. it is the lowest such version: it equals the larger of 2 and 3.
# Newer std APIs are caught by clippy's `incompatible_msrv` lint, which
# compares every std item's stabilisation version with rust-version and
# runs in .ci/run's `cargo clippy -- -D warnings` (it found
# str::floor_char_boundary, 1.91). What neither proves: the absence of an
# unlisted newer *language* feature or compiler behaviour. A real build with
# the declared toolchain (`cargo +1.89 build --locked`) is the full proof,
# where that toolchain can be installed.
set -euo pipefail
cd "$(dirname "$0")/.."

declared=$(sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' Cargo.toml)
[ -n "$declared" ] || { echo "msrv: no rust-version in Cargo.toml" >&2; exit 1; }

# feature | stabilised in | pattern (grep -E over src/)
features=(
  "edition 2024|1.85|"
  "let chains (if let ... && let)|1.88|&& let |if let .* && "
  "File::try_lock / TryLockError|1.89|TryLockError|\\.try_lock\\(\\)"
  "Option::is_none_or|1.82|is_none_or\\("
  "io::ErrorKind::ExecutableFileBusy|1.83|ExecutableFileBusy"
)
need=0.0
need_what="nothing"
vmax() { printf '%s\n%s\n' "$1" "$2" | sort -V | tail -1; }
for f in "${features[@]}"; do
  name=${f%%|*}; rest=${f#*|}; ver=${rest%%|*}; pat=${rest#*|}
  if [ -z "$pat" ] || grep -rqE "$pat" src build.rs; then
    if [ "$(vmax "$need" "$ver")" = "$ver" ] && [ "$ver" != "$need" ]; then
      need=$ver; need_what=$name
    fi
  fi
done

deps=$(cargo metadata --format-version 1 --locked | python3 -c '
import json, sys
m = json.load(sys.stdin)
best = ("0.0", "nothing")
key = lambda v: tuple(int(x) for x in v.split("."))
for p in m["packages"]:
    if p["name"] == "lifeboat" or not p.get("rust_version"):
        continue
    v = ".".join(p["rust_version"].split(".")[:2])
    if key(v) > key(best[0]):
        best = (v, p["name"] + " " + p["version"])
print(best[0] + "|" + best[1])')
dep_ver=${deps%%|*}; dep_what=${deps#*|}

lowest=$(vmax "$need" "$dep_ver")
echo "msrv: declared $declared; features need $need ($need_what); dependencies need $dep_ver ($dep_what)"
if [ "$(vmax "$declared" "$lowest")" != "$declared" ]; then
  echo "msrv: rust-version $declared is too old: at least $lowest is needed" >&2; exit 1
fi
if [ "$declared" != "$lowest" ]; then
  echo "msrv: rust-version $declared is higher than needed ($lowest): declare the lowest" >&2; exit 1
fi
# And the toolchain in use builds it with the lock file honoured.
cargo build --locked --quiet
echo "msrv: ok"
