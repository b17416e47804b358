#!/usr/bin/env bash
# Build the libFuzzer targets with clang and run each for a bounded time.
#   scripts/fuzz.sh [SECONDS]   (default 30; a longer run is one number away)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-30}
CC=clang bash "$top/scripts/setup.sh" "$top/build-fuzz" -DRFS_FUZZ=ON -DRFS_FUZZ_SECONDS="$secs" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cd "$top/build-fuzz" && ctest --output-on-failure -L fuzz
