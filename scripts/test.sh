#!/usr/bin/env bash
# Install, build and run every test of replicafs (as root: tests mount).
#   0. cppcheck on the product code, and the Release (-O3) build;
#   1. an ASan+UBSan build: unit and integration tests (real FUSE mounts);
#   2. docs/FAULTS.md must match the faults the tests recorded;
#   2b. the unit tests once more under valgrind (release build);
#   3. a ThreadSanitizer build: the tests labelled "tsan" (threaded unit
#      tests, the concurrency integration test);
#   4. the fuzz targets, bounded (RFS_FUZZ_SECONDS, default 30 s each);
#   5. the Debian package: built from a copy of the tree, installed with
#      apt-get, mounted through /etc/fstab, purged (scripts/package-test.sh).
# Ends with one summary line: "N passed, N failed".
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
passed=0 failed=0

count() { # count <ctest log>: add its "x% tests passed, N tests failed out of M"
	local line
	line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' "$1" | tail -1)
	if [ -z "$line" ]; then failed=$((failed + 1)); return; fi
	local f t
	f=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$line")
	t=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2/' <<<"$line")
	passed=$((passed + t - f)); failed=$((failed + f))
}

bash "$top/scripts/setup.sh" "$top/build-asan" -DRFS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug || { echo "0 passed, 1 failed"; exit 1; }
bash "$top/scripts/setup.sh" "$top/build" || { echo "0 passed, 1 failed"; exit 1; }

log=$(mktemp)
echo "== cppcheck: the product code"
if cppcheck --error-exitcode=1 --enable=warning,portability,performance --inline-suppr --std=c11 \
	-D_GNU_SOURCE -q -I "$top/vhd" -I "$top/ctl" "$top/vhd" "$top/ctl" "$top/fs"; then
	passed=$((passed + 1))
else
	echo "cppcheck reported problems"; failed=$((failed + 1))
fi

echo "== Release build (-O3, what scripts/bench.sh and scale.sh build): no warning"
if bash "$top/scripts/setup.sh" "$top/build-release" -DCMAKE_BUILD_TYPE=Release -DRFS_TESTS=OFF >/dev/null; then
	passed=$((passed + 1))
else
	echo "the Release build failed (-Werror at -O3)"; failed=$((failed + 1))
fi

echo "== ASan/UBSan build: unit + integration tests"
(cd "$top/build-asan" && ctest --output-on-failure --timeout 1200 ${RFS_CTEST_ARGS:-}) 2>&1 | tee "$log"
count "$log"

echo "== docs/FAULTS.md is what the integration tests proved"
if bash "$top/scripts/faults.sh" "$top/build-asan" --check; then passed=$((passed + 1)); else failed=$((failed + 1)); fi

echo "== valgrind: unit tests (release build)"
(cd "$top/build" && ctest --output-on-failure -L unit --timeout 1200 \
	--overwrite MemoryCheckCommand=/usr/bin/valgrind \
	--overwrite "MemoryCheckCommandOptions=--error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite" \
	-T memcheck) 2>&1 | tee "$log"
count "$log"
if grep -qE 'Memory checking results:' "$log" && grep -A20 'Memory checking results:' "$log" | grep -qE '(Definitely Lost|Invalid|Uninitialized|Mismatched).* - [1-9]'; then
	echo "valgrind reported memory errors"; failed=$((failed + 1))
fi

echo "== ThreadSanitizer build: tests labelled tsan"
if bash "$top/scripts/setup.sh" "$top/build-tsan" -DRFS_TSAN=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo; then
	# ThreadSanitizer slows the daemon 5-15x: the living-store tests keep
	# their checks but get 15 s where the spec's 5 s bound is asserted (the
	# ASan run above asserts 5 s).
	(cd "$top/build-tsan" && RFS_LIVE_DEADLINE=15 ctest --output-on-failure -L tsan --timeout 1200) 2>&1 | tee "$log"
	count "$log"
else
	echo "ThreadSanitizer build failed"; failed=$((failed + 1))
fi

if [ -x "$top/scripts/fuzz.sh" ]; then
	echo "== fuzzers (bounded)"
	if bash "$top/scripts/fuzz.sh" "${RFS_FUZZ_SECONDS:-30}"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
fi
echo "== Debian package: build, install, mount through /etc/fstab, purge"
if bash "$top/scripts/package-test.sh"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
rm -f "$log"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
