#!/usr/bin/env bash
# Memory and CPU per path of the merged tree at 1M and 10M paths (and 100M with SCALE_100M=1,
# which needs about 10-15 GB of free memory per build), through the code path of
# `POST /update/` (core/examples/tree_scale.rs: JSON body -> UpdateParser -> Node::handle).
# The same example is built at this checkout and at BASE (default: the merge base with main),
# in a temporary worktree, and both are run in the same run, one after the other; the ratios
# are this checkout / BASE. Nothing is asserted: the machine is shared and noisy.
#
#   bench/scale.sh                  # 1M (best of 3 rounds) and 10M (best of 2)
#   SCALE_100M=1 bench/scale.sh     # and 100M (1 round)
#   BASE=HEAD~3 bench/scale.sh
#
# Needs git and python3.
set -euo pipefail

cd "$(dirname "$0")/.."
BASE=${BASE:-$(git merge-base HEAD main)}
TARGET=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys;print(json.load(sys.stdin)["target_directory"])')

WORK=$(mktemp -d /tmp/dftp-scale-bench.XXXXXX)
cleanup() {
  git worktree remove --force "$WORK/base" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "# building this checkout and $BASE"
cargo build --release -q -p dftp-core --example tree_scale
cp "$TARGET/release/examples/tree_scale" "$WORK/new"
git worktree add -q --detach "$WORK/base" "$BASE"
# BASE may predate the example: build the same one there (it uses only long-standing API).
mkdir -p "$WORK/base/core/examples" "$WORK/base/core/benches/common"
cp core/examples/tree_scale.rs "$WORK/base/core/examples/"
cp core/benches/common/counting_alloc.rs "$WORK/base/core/benches/common/"
# The shared target directory keeps the dependencies built once; only the workspace's own crates
# are rebuilt for the other source tree.
(cd "$WORK/base" && CARGO_TARGET_DIR="$TARGET" cargo build --release -q -p dftp-core --example tree_scale)
cp "$TARGET/release/examples/tree_scale" "$WORK/base-bin"

sizes=("1000000 3" "10000000 2")
[ "${SCALE_100M:-}" = 1 ] && sizes+=("100000000 1")
for size in "${sizes[@]}"; do
  set -- $size
  echo "## $1 paths"
  "$WORK/base-bin" "$1" "$2" > "$WORK/base.out"
  "$WORK/new" "$1" "$2" > "$WORK/new.out"
  python3 - "$WORK/base.out" "$WORK/new.out" <<'PY'
import sys
def read(f):
    return dict(l.split(": ", 1) for l in open(f).read().splitlines())
base, new = read(sys.argv[1]), read(sys.argv[2])
print(f"{new['paths']}")
print(f"{'':24} {'base':>10} {'this':>10} {'this/base':>10}")
for k in ["rss_bytes_per_path", "heap_bytes_per_path", "parse_cpu_s", "apply_first_cpu_s", "apply_repeat_cpu_s", "apply_drop_cpu_s"]:
    b, n = float(base[k].split()[0]), float(new[k].split()[0])
    print(f"{k:24} {b:10.3f} {n:10.3f} {n / b:10.2f}")
PY
done
