#!/usr/bin/env bash
# Runs every fuzz target, one after the other, for SECONDS each (default 300), on one core,
# after seeding the corpora. Prints libFuzzer's last status line of each run.
#
#   fuzz/run-all.sh [SECONDS] [TARGET...]
#
# Crashes land in fuzz/artifacts/<target>/; the corpora grow in fuzz/corpus/<target>/.
set -uo pipefail
cd "$(dirname "$0")/.."
secs="${1:-300}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for f in fuzz/fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi
bash fuzz/seed.sh "${targets[@]}" >/dev/null
cargo fuzz build -s none || exit 1
mkdir -p fuzz/logs
status=0
for t in "${targets[@]}"; do
    log="fuzz/logs/$t.log"
    cargo fuzz run -s none "$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
        >"$log" 2>&1
    rc=$?
    [ $rc -eq 0 ] || status=1
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    echo "$t (exit $rc): $last"
done
exit $status
