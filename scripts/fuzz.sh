#!/usr/bin/env bash
# Fuzz every parser (fuzz/fuzz_targets/*.rs) with libFuzzer.
#   bash scripts/fuzz.sh [seconds per target] [target ...]
# Defaults: 30 s each, every target. First replays the kept regression
# inputs (fuzz/regressions/<target>/: crashers found and fixed), then runs
# each target from its seeds (fuzz/seeds, in git) and the minimized corpus
# of earlier runs for the given time. The corpus is kept outside the
# repository, in $HOOKSEAL_FUZZ_CORPUS (default ~/.cache/hookseal-fuzz):
# it is built by the runs, not reviewed, and was 98% of the repository's
# files. On a fresh machine (CI) a run starts from the seeds alone. A crash
# fails the script and leaves the input in fuzz/artifacts/<target>/ (git
# ignores it; a fixed crasher is copied to fuzz/regressions/<target>/). One
# line per target goes to stdout and to $HOOKSEAL_FUZZ_REPORT (default
# target/fuzz-report.tsv):
#   target  seconds  executions  exec/s  coverage  corpus  crashes
# HOOKSEAL_FUZZ_SAVE=1 merges what the run found into that corpus (minimized).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib.sh"
need_rust
need_fuzz
cd "$root/fuzz"
secs=${1:-30}
corpus=${HOOKSEAL_FUZZ_CORPUS:-$HOME/.cache/hookseal-fuzz}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi
echo "== building the fuzz targets (ASan, libFuzzer)"
RUSTC_BOOTSTRAP=1 cargo fuzz build -O >/dev/null 2>&1 || RUSTC_BOOTSTRAP=1 cargo fuzz build -O
bin="$root/fuzz/target/x86_64-unknown-linux-gnu/release"
report=${HOOKSEAL_FUZZ_REPORT:-$root/target/fuzz-report.tsv}
mkdir -p "$(dirname "$report")"
work=$(mktemp -d /tmp/hookseal-fuzz.XXXX)
trap 'rm -rf "$work"' EXIT
failed=0
printf 'target\tseconds\texecutions\texec_per_s\tcoverage\tcorpus\tcrashes\n' | tee "$report"
for t in "${targets[@]}"; do
  if [ -d "regressions/$t" ] && [ -n "$(ls -A "regressions/$t")" ]; then
    "$bin/$t" -runs=1 regressions/"$t"/* >"$work/$t.regress.log" 2>&1 || {
      echo "$t: a kept regression input fails again:" >&2
      tail -30 "$work/$t.regress.log" >&2
      failed=1
      continue
    }
  fi
  mkdir -p "$work/$t" "artifacts/$t"
  for d in seeds "$corpus"; do
    [ -d "$d/$t" ] && cp -r "$d/$t/." "$work/$t/" 2>/dev/null || true
  done
  crashes=0
  started=$SECONDS
  ASAN_OPTIONS=detect_odr_violation=0:detect_leaks=0 \
  "$bin/$t" "$work/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="artifacts/$t/" >"$work/$t.log" 2>&1 || crashes=1
  took=$(( SECONDS - started ))
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$t.log" | grep -o '[0-9]*$' || echo 0)
  # A crash ends the run before stats are printed: the last status line's count.
  [ "$runs" != 0 ] || runs=$(grep -o '^#[0-9]*' "$work/$t.log" | tail -1 | tr -d '#' || echo 0)
  cov=$(grep -o 'cov: [0-9]*' "$work/$t.log" | tail -1 | grep -o '[0-9]*' || echo 0)
  corp=$(ls "$work/$t" | wc -l)
  rate=$(( runs / (took > 0 ? took : 1) ))
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$took" "$runs" "$rate" "$cov" "$corp" "$crashes" | tee -a "$report"
  if [ "$crashes" != 0 ]; then
    echo "$t crashed; input kept in fuzz/artifacts/$t/:" >&2
    grep -m1 -A25 -E 'panicked|ERROR: libFuzzer|ERROR: AddressSanitizer' "$work/$t.log" >&2 || tail -40 "$work/$t.log" >&2
    failed=1
  elif [ -n "${HOOKSEAL_FUZZ_SAVE:-}" ]; then
    mkdir -p "$corpus/$t" "$work/$t.min"
    "$bin/$t" -merge=1 "$work/$t.min" "$corpus/$t" "$work/$t" >/dev/null 2>&1
    rm -rf "${corpus:?}/$t" && mv "$work/$t.min" "$corpus/$t"
  fi
done
exit $failed
