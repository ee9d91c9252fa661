#!/usr/bin/env bash
# Copies the committed seeds (fuzz/seeds/<target>/) into the working corpora
# (fuzz/corpus/<target>/, not in git), for every target or those named.
#
#   fuzz/seed.sh [TARGET...]
#
# The seeds are rebuilt from traces/ by `python3 fuzz/make_seeds.py`.
set -euo pipefail
cd "$(dirname "$0")"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=()
    for f in fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi
for t in "${targets[@]}"; do
    [ -d "seeds/$t" ] || { echo "no seeds for $t" >&2; exit 1; }
    mkdir -p "corpus/$t"
    cp -n seeds/"$t"/* "corpus/$t/"
    echo "$t: $(ls "corpus/$t" | wc -l) inputs in fuzz/corpus/$t"
done
