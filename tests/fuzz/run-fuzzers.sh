#!/bin/bash
# Bounded fuzzing for CI: tests/fuzz/run-fuzzers.sh [SECONDS] (default 60)
#
# Builds the tree with clang + libFuzzer under ASan+UBSan (the top-level
# meson.build instruments every library with -fsanitize=fuzzer-no-link in
# that mode), then runs every tests/fuzz fuzz_* target for SECONDS on a
# scratch copy of its corpus: the repository's corpus is never written to.
# Prints one line per target (executions, corpus growth, result), then
# `N passed, M failed` (one count per target). Exit 0 only if every target
# ran its time without a crash, leak, sanitizer report or timeout.
#
# Environment: FUZZ_BUILD_DIR (default /tmp/egressd-fuzz-build), FUZZ_WORK
# (default a fresh mktemp -d; kept when something failed, for the crash
# files and logs), FUZZ_TARGETS (space separated subset, e.g. "tls http"),
# FUZZ_JOBS (ninja -j), FUZZ_ENGINE_RUNS (default 1000000) and
# FUZZ_EXTRA_SECONDS (default 120): fuzz_engine, the most stateful target and
# the slowest per input, runs until FUZZ_ENGINE_RUNS executions instead, at
# most SECONDS + FUZZ_EXTRA_SECONDS; its line says whether it got there.
# Needs clang and libclang-rt-14-dev.
set -uo pipefail

secs=${1:-60}
if ! [[ $secs =~ ^[1-9][0-9]*$ ]]; then
	echo "usage: $0 [SECONDS]   (a positive whole number, per target)" >&2
	exit 2
fi

SRC=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
BUILD=${FUZZ_BUILD_DIR:-/tmp/egressd-fuzz-build}
WORK=${FUZZ_WORK:-$(mktemp -d /tmp/egressd-fuzz.XXXXXX)}
mkdir -p "$WORK"

say() { printf '[run-fuzzers] %s\n' "$*"; }

fail_build() {
	say "$*"
	echo "0 passed, 1 failed"
	exit 1
}

command -v clang >/dev/null || fail_build "clang not found (apt-get install clang libclang-rt-14-dev)"

# -- build -------------------------------------------------------------------
opts=(-Dfuzzing_engine=libfuzzer "-Db_sanitize=address,undefined" -Db_lundef=false
	-Dbuildtype=debugoptimized)
if [ -f "$BUILD/meson-private/coredata.dat" ]; then
	CC=clang meson setup --reconfigure "$BUILD" "$SRC" "${opts[@]}" >"$WORK/setup.log" 2>&1
else
	CC=clang meson setup "$BUILD" "$SRC" "${opts[@]}" >"$WORK/setup.log" 2>&1
fi || {
	cat "$WORK/setup.log"
	fail_build "meson setup of $BUILD failed"
}
engine=$(meson introspect --buildoptions "$BUILD" 2>/dev/null |
	/usr/bin/python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"] == "fuzzing_engine"][0])' 2>/dev/null)
if [ "$engine" != libfuzzer ]; then
	fail_build "$BUILD is not configured with -Dfuzzing_engine=libfuzzer"
fi

# Only the fuzz targets: the daemon and unit tests are not needed here.
all=()
for f in "$SRC"/tests/fuzz/fuzz_*.c; do
	[ -e "$f" ] && all+=("$(basename "$f" .c)")
done
[ ${#all[@]} -gt 0 ] || fail_build "no tests/fuzz/fuzz_*.c targets"
if [ -n "${FUZZ_TARGETS:-}" ]; then
	targets=()
	for t in $FUZZ_TARGETS; do
		t=fuzz_${t#fuzz_}
		[ -f "$SRC/tests/fuzz/$t.c" ] || fail_build "no such target: $t"
		targets+=("$t")
	done
else
	targets=("${all[@]}")
fi
ninja_targets=()
for t in "${targets[@]}"; do ninja_targets+=("tests/fuzz/$t"); done
say "building ${#targets[@]} target(s) in $BUILD"
if ! ninja -C "$BUILD" ${FUZZ_JOBS:+-j "$FUZZ_JOBS"} "${ninja_targets[@]}" >"$WORK/build.log" 2>&1; then
	tail -n 40 "$WORK/build.log"
	fail_build "ninja failed (log: $WORK/build.log)"
fi

# -- run ---------------------------------------------------------------------
# A crash, leak or sanitizer report must end the run and make libFuzzer exit
# non-zero; a slow input (-timeout) counts as a failure too.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

# Executions to aim for, per target (others: SECONDS of fuzzing).
declare -A goal_runs=([engine]=${FUZZ_ENGINE_RUNS:-1000000})
extra=${FUZZ_EXTRA_SECONDS:-120}

passed=0
failed=0
failed_names=()
for t in "${targets[@]}"; do
	name=${t#fuzz_}
	bin=$BUILD/tests/fuzz/$t
	corpus=$WORK/corpus/$name
	arts=$WORK/artifacts/$name
	log=$WORK/$t.log
	rm -rf "$corpus" "$arts"
	mkdir -p "$corpus" "$arts"
	if [ -d "$SRC/tests/fuzz/corpus/$name" ]; then
		cp -r "$SRC/tests/fuzz/corpus/$name/." "$corpus/"
	fi
	seeds=$(find "$corpus" -type f | wc -l)
	dict=()
	[ -f "$SRC/tests/fuzz/$name.dict" ] && dict=(-dict="$SRC/tests/fuzz/$name.dict")
	# -max_total_time (or -runs) ends the run; timeout(1) is the backstop should it hang.
	limit=$secs goal=${goal_runs[$name]:-} runs=()
	if [ -n "$goal" ]; then
		limit=$((secs + extra))
		runs=(-runs="$goal")
	fi
	t0=$SECONDS
	timeout --kill-after=10 $((limit + 60)) "$bin" "$corpus" "${dict[@]}" "${runs[@]}" \
		-max_total_time="$limit" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
		-print_final_stats=1 -artifact_prefix="$arts/" >"$log" 2>&1
	rc=$?
	took=$((SECONDS - t0))
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	[ -n "$execs" ] || execs=$(grep -o '#[0-9]*' "$log" | tail -n 1 | tr -d '#')
	[ -n "$execs" ] || execs=0
	now=$(find "$corpus" -type f | wc -l)
	crashes=$(find "$arts" -type f | wc -l)
	if [ $rc -eq 0 ] && [ "$crashes" -eq 0 ] && ! grep -q "ERROR: \(Address\|Leak\|UndefinedBehavior\)Sanitizer\|runtime error:\|ERROR: libFuzzer" "$log"; then
		result=ok
		passed=$((passed + 1))
	else
		case $rc in
		124 | 137) result="FAILED (hung: killed after $((limit + 60)) s)" ;;
		*) result="FAILED (exit $rc, $crashes artifact(s))" ;;
		esac
		failed=$((failed + 1))
		failed_names+=("$t")
	fi
	if [ -n "$goal" ] && [ "$result" = ok ]; then
		if [ "$execs" -ge "$goal" ]; then
			result="ok (goal $goal execs reached)"
		else
			result="ok (goal $goal execs NOT reached in $limit s: the machine is slow or loaded)"
		fi
	fi
	printf '%-16s %10s execs in %4ss  corpus %d -> %d  %s\n' "$t" "$execs" "$took" \
		"$seeds" "$now" "$result"
	if [ "${result%% *}" != ok ]; then
		{
			grep -m 1 "ERROR: \|runtime error:\|deadly signal\|Timeout" "$log"
			grep -m 1 -A 4 "^    #0 \|^#0 " "$log"
			grep -m 1 "SUMMARY:" "$log"
			grep "Test unit written" "$log"
		} | sed 's/^/    /'
		say "log: $log; artifacts: $arts"
	fi
done

if [ $failed -eq 0 ] && [ -z "${FUZZ_WORK:-}" ]; then
	rm -rf "$WORK"
else
	say "work directory kept: $WORK"
fi
[ $failed -eq 0 ] || say "failed: ${failed_names[*]}"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
