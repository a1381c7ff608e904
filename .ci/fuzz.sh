#!/usr/bin/env bash
# A short, bounded fuzzing run of the cargo-fuzz targets in fuzz/.
#
#   bash .ci/fuzz.sh                      # every target, 30 s each
#   FUZZ_SECONDS=300 bash .ci/fuzz.sh     # longer
#   FUZZ_TARGETS="pair_commands" bash .ci/fuzz.sh
#
# Environment:
#   FUZZ_SECONDS     seconds per target (default 30; 0 skips the run)
#   FUZZ_TARGETS     space-separated targets (default: all three)
#   FUZZ_SANITIZER   cargo-fuzz sanitizer (default none: grid-proto is safe Rust,
#                    and without ASan the targets run 5-7 times faster)
#   FUZZ_TOOLCHAIN   rustup toolchain (default stable)
#
# cargo-fuzz needs unstable rustc flags. Only the stable toolchain is assumed,
# so it runs with RUSTC_BOOTSTRAP=1. When fuzzing is not possible here (no
# cargo, cargo-fuzz cannot be installed, the compiler refuses the flags, no C++
# compiler for libFuzzer) this prints "skipped: <reason>" and exits 0. A crash,
# a timeout or a build failure of the targets exits non-zero.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

seconds=${FUZZ_SECONDS:-30}
targets=${FUZZ_TARGETS:-"frame_decoder connection_input pair_commands"}
sanitizer=${FUZZ_SANITIZER:-none}
toolchain=${FUZZ_TOOLCHAIN:-stable}

skip() {
  echo "fuzz: skipped: $*"
  exit 0
}

case "$seconds" in
  '' | *[!0-9]*) echo "fuzz: FUZZ_SECONDS must be a whole number of seconds, not '$seconds'" >&2; exit 2 ;;
esac
[ "$seconds" -gt 0 ] || skip "FUZZ_SECONDS=0"
command -v cargo >/dev/null 2>&1 || skip "cargo is not installed"

# The toolchain: `cargo +stable` when rustup has it, else whatever `cargo` is.
plus=()
if command -v rustup >/dev/null 2>&1 && rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
  plus=("+$toolchain")
fi
export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=never

# cargo-fuzz, installed once per machine (cargo's bin directory is the cache).
if ! cargo "${plus[@]}" fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  if ! cargo "${plus[@]}" install cargo-fuzz --locked; then
    skip "cargo-fuzz could not be installed"
  fi
  cargo "${plus[@]}" fuzz --version >/dev/null 2>&1 || skip "cargo-fuzz is installed but 'cargo fuzz' does not run"
fi
echo "fuzz: $(cargo "${plus[@]}" fuzz --version), $(rustc "${plus[@]}" --version), RUSTC_BOOTSTRAP=1, sanitizer $sanitizer"

# libfuzzer-sys compiles libFuzzer's C++ sources.
if ! command -v c++ >/dev/null 2>&1 && ! command -v g++ >/dev/null 2>&1 && ! command -v clang++ >/dev/null 2>&1; then
  skip "no C++ compiler to build libFuzzer"
fi

# Does this compiler accept the instrumentation flags cargo-fuzz passes? A
# refusal here is the environment's; a failure of the real build below is ours.
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'pub fn probe(x: u8) -> u8 { if x > 3 { x } else { 3 } }' >"$probe/probe.rs"
probe_flags=(-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table
  -Cllvm-args=-sanitizer-coverage-trace-compares)
[ "$sanitizer" = none ] || probe_flags+=("-Zsanitizer=$sanitizer")
if ! rustc "${plus[@]}" --edition 2021 --crate-type lib --emit obj "${probe_flags[@]}" \
  -o "$probe/probe.o" "$probe/probe.rs" >"$probe/probe.log" 2>&1; then
  cat "$probe/probe.log"
  skip "rustc refuses cargo-fuzz's instrumentation flags even with RUSTC_BOOTSTRAP=1"
fi

# Dependencies: failing to fetch them is the environment's (no registry).
if ! cargo "${plus[@]}" fetch --manifest-path fuzz/Cargo.toml; then
  skip "the fuzz workspace's dependencies could not be fetched"
fi

echo "fuzz: building the targets (release, debug assertions on)"
start=$SECONDS
if ! cargo "${plus[@]}" fuzz build -s "$sanitizer"; then
  echo "fuzz: FAILED: the fuzz targets do not build" >&2
  exit 1
fi
echo "fuzz: built in $((SECONDS - start)) s"

failed=()
for target in $targets; do
  log="$probe/$target.log"
  echo "fuzz: running $target for $seconds s"
  cargo "${plus[@]}" fuzz run -s "$sanitizer" "$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 >"$log" 2>&1
  status=$?
  # The closing statistics: runs, speed, coverage.
  grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log"
  if [ "$status" -ne 0 ]; then
    failed+=("$target")
    echo "fuzz: FAILED: $target (exit $status)" >&2
    # The panic message and where libFuzzer saved the input.
    grep -E -A4 "panicked at|ERROR: libFuzzer|SUMMARY: libFuzzer" "$log" | head -n 40 >&2
    artifact=$(sed -n 's/.*Test unit written to \([^ ]*\).*/\1/p' "$log" | tail -n 1)
    if [ -n "$artifact" ] && [ -f "$artifact" ]; then
      echo "fuzz: reproducer $artifact ($(wc -c <"$artifact") bytes), hex:" >&2
      od -An -tx1 -v "$artifact" | tr -d ' \n' | fold -w 128 >&2
      echo >&2
      echo "fuzz: replay with: cd fuzz && RUSTC_BOOTSTRAP=1 cargo ${plus[*]} fuzz run -s $sanitizer $target ${artifact#"$root/fuzz/"}" >&2
      echo "fuzz: readable input: cd fuzz && RUSTC_BOOTSTRAP=1 cargo ${plus[*]} fuzz fmt -s $sanitizer $target ${artifact#"$root/fuzz/"}" >&2
    else
      tail -n 30 "$log" >&2
    fi
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: ${#failed[@]} of $(echo $targets | wc -w) targets failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: every target ran ${seconds} s without a crash"
