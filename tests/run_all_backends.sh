#!/usr/bin/env bash
# Runs the test suite once per Keras backend, each in its own process.
# Usage: bash tests/run_all_backends.sh [pytest args...]
# Tests marked `slow` are left out (run them with: python -m pytest -m slow).
# Exits non-zero if any backend fails, or if pytest collects no test (exit 5).
set -u
cd "$(dirname "$0")/.."
status=0
summary=()
for backend in tensorflow jax torch; do
  echo "=== KERAS_BACKEND=$backend"
  log=$(mktemp)
  KERAS_BACKEND=$backend python -m pytest -q -p no:cacheprovider -m "not slow" "$@" tests 2>&1 | tee "$log"
  code=${PIPESTATUS[0]}
  if [ "$code" -eq 5 ]; then
    echo "keras-ssl tests: no test was collected under $backend" >&2
  fi
  [ "$code" -ne 0 ] && status=1
  summary+=("$backend: $(grep -E '^[0-9]+ (passed|failed)|^=+ .*(passed|failed)' "$log" | tail -n 1 | tr -d '=' | xargs) (exit $code)")
  rm -f "$log"
done
echo "=== summary"
printf '%s\n' "${summary[@]}"
exit $status
