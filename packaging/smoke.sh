#!/usr/bin/env bash
# Smoke test of the frozen application (the one-folder bundle built by `make package`).
#
#   packaging/smoke.sh [PATH/TO/pathshare]        # default: dist/pathshare/pathshare
#
# Checks, each in a fresh temporary folder with HOME and the XDG folders pointed inside it:
#   1. `pathshare --version` prints the version in pyproject.toml; `--help` works; a refused command
#      says one sentence and exits 1 (no traceback);
#   2. `pathshare demo` -- the whole exchange, headless -- with networking disabled (`unshare -n`);
#      then Excel and Parquet extracts de-identified (`synth`, `deid --policy`), also offline;
#   3. the GUI starts offscreen, shows its window and closes cleanly (PATHSHARE_SMOKE_QUIT_MS);
#      again when opened on a sealed package (`pathshare FILE.age`, what "Open with" runs);
#      again while a real background job runs in the frozen worker process (PATHSHARE_SMOKE_JOB);
#      and, when xvfb-run is installed, on a virtual X server with the xcb plugin users get.
#
# Networking: as root `unshare -n`, otherwise `unshare -r -n` (an unprivileged user namespace). If
# neither works the steps run with networking on and say so; PATHSHARE_SMOKE_REQUIRE_OFFLINE=1 (set in
# CI) makes that a failure instead.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$(realpath "${1:-$ROOT/dist/pathshare/pathshare}")"
STEP_TIMEOUT="${PATHSHARE_SMOKE_TIMEOUT:-180}"
ROWS="${PATHSHARE_SMOKE_ROWS:-300}"

if [[ ! -x "$BIN" ]]; then
  echo "smoke: no frozen app at $BIN; build it first with 'make package'." >&2
  exit 1
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/pathshare-smoke.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/home/.config" "$WORK/home/.local/share" "$WORK/home/.cache" "$WORK/runtime"
chmod 700 "$WORK/runtime"
export HOME="$WORK/home" XDG_CONFIG_HOME="$WORK/home/.config" XDG_DATA_HOME="$WORK/home/.local/share"
export XDG_CACHE_HOME="$WORK/home/.cache" XDG_RUNTIME_DIR="$WORK/runtime"
unset PATHSHARE_VAULT PATHSHARE_SMOKE_QUIT_MS PATHSHARE_SMOKE_JOB
export PATHSHARE_PASSPHRASE="smoke-test passphrase, long enough 4711"

failures=0
pass() { echo "smoke: PASS $*"; }
fail() { echo "smoke: FAIL $*" >&2; failures=$((failures + 1)); }
elapsed() { echo $(( $(date +%s%N) / 1000000 - $1 )); }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# --- networking off ------------------------------------------------------------------------------
OFFLINE=()
if unshare -n true 2>/dev/null; then
  OFFLINE=(unshare -n)
elif unshare -r -n true 2>/dev/null; then
  OFFLINE=(unshare -r -n)
fi
if [[ ${#OFFLINE[@]} -gt 0 ]]; then
  echo "smoke: networking disabled for the app with: ${OFFLINE[*]} (a namespace with no network)"
elif [[ "${PATHSHARE_SMOKE_REQUIRE_OFFLINE:-0}" == "1" ]]; then
  echo "smoke: FAIL cannot disable networking: 'unshare -n' (needs root) and 'unshare -r -n' (needs" \
       "unprivileged user namespaces) both failed, and PATHSHARE_SMOKE_REQUIRE_OFFLINE=1." >&2
  exit 1
else
  echo "smoke: WARNING cannot disable networking ('unshare -n' needs root, 'unshare -r -n' needs" \
       "unprivileged user namespaces); running WITH networking, so this run does not prove the app" \
       "works offline." >&2
fi

WRAP=()  # a command the app runs under (xvfb-run for the X11 check)
run_app() {  # run_app NAME [ENV=VALUE ...] -- ARGS...: the app, offline, with a time limit
  local name="$1"; shift
  local envs=()
  while [[ "$1" != "--" ]]; do envs+=("$1"); shift; done
  shift
  env "${envs[@]}" timeout "$STEP_TIMEOUT" "${WRAP[@]}" "${OFFLINE[@]}" "$BIN" "$@" \
    >"$WORK/$name.out" 2>"$WORK/$name.err"
}

show_logs() {
  echo "--- $1 stdout" >&2; tail -n 20 "$WORK/$1.out" >&2
  echo "--- $1 stderr" >&2; tail -n 40 "$WORK/$1.err" >&2
}

# --- 1. version, help, a refusal ----------------------------------------------------------------
expected="$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/pyproject.toml" | head -n 1)"
t=$(now_ms)
if run_app version -- --version && grep -qx "pathshare $expected" "$WORK/version.out"; then
  pass "--version: $(cat "$WORK/version.out") ($(elapsed "$t") ms)"
else
  fail "--version did not print 'pathshare $expected'"; show_logs version
fi
if run_app help -- --help && grep -q "demo" "$WORK/help.out"; then
  pass "--help lists the commands"
else
  fail "--help"; show_logs help
fi
set +e
run_app refusal PATHSHARE_VAULT="$WORK/none.vault" -- open "$WORK/missing.age" --out "$WORK/refused"
code=$?
set -e
if [[ $code -eq 1 ]] && grep -q "^pathshare: " "$WORK/refusal.err" && ! grep -q Traceback "$WORK/refusal.err" \
   && [[ ! -e "$WORK/refused" ]]; then
  pass "a refused command exits 1 with one sentence: $(head -n 1 "$WORK/refusal.err")"
else
  fail "a refused command (exit $code)"; show_logs refusal
fi

# --- 2. the headless demo, offline --------------------------------------------------------------
t=$(now_ms)
if run_app demo -- demo --workdir "$WORK/demo" --rows "$ROWS"; then
  ms=$(elapsed "$t")
  packages=("$WORK"/demo/outbox/*.age)
  if [[ -f "${packages[0]}" ]] && find "$WORK/demo/inbox" -type f -name "*.csv" | grep -q . \
     && [[ -f "$WORK/demo/district.vault" && -f "$WORK/demo/college.vault" ]] \
     && grep -q "verified" "$WORK/demo.out" && ! grep -q Traceback "$WORK/demo.err"; then
    pass "demo ($ROWS rows, offline): package sealed, opened, both audit logs verified ($ms ms)"
  else
    fail "demo ran but its results are incomplete"; show_logs demo; ls -R "$WORK/demo" >&2 || true
  fi
else
  fail "demo exited $?"; show_logs demo
fi

# --- 2b. the file formats, offline: Excel and Parquet in, Parquet and CSV out, notes redacted -------
F="$WORK/formats"
mkdir -p "$F"
cat >"$F/policy.json" <<'POLICY'
{"pathshare_policy": 1, "k": 2, "drop_unlisted": true,
 "columns": {
  "Birth Date": {"treatment": "generalize_date", "to": "year", "as": "birth_year", "quasi_identifier": true},
  "Gender": {"treatment": "keep", "quasi_identifier": true},
  "ZIP": {"treatment": "zip3", "as": "zip3", "quasi_identifier": true},
  "GPA": {"treatment": "bucket", "edges": [0, 1, 2, 3, 4.5]},
  "Counselor Notes": {"treatment": "redact_text"}}}
POLICY
t=$(now_ms)
if run_app synth_xlsx -- synth --kind k12 --rows 200 --out "$F/extract.xlsx" \
   && run_app synth_parquet -- synth --kind k12 --rows 200 --out "$F/extract.parquet" \
   && run_app deid_xlsx -- deid "$F/extract.xlsx" --policy "$F/policy.json" --out "$F/out.parquet" \
        --report "$F/report.json" \
   && run_app deid_parquet -- deid "$F/extract.parquet" --policy "$F/policy.json" --out "$F/out.csv"; then
  if [[ -s "$F/out.parquet" && -s "$F/report.json" ]] && head -n 1 "$F/out.csv" | grep -q birth_year \
     && grep -q "<PHONE_NUMBER>" "$F/out.csv" && ! grep -q "@" "$F/out.csv"; then
    pass "formats (offline): .xlsx -> .parquet, .parquet -> .csv de-identified, notes redacted ($(elapsed "$t") ms)"
  else
    fail "formats: outputs missing or notes not redacted"; head -n 3 "$F/out.csv" >&2 || true
  fi
else
  fail "formats: a step failed"
  for step in synth_xlsx synth_parquet deid_xlsx deid_parquet; do
    if [[ -f "$WORK/$step.err" ]]; then show_logs "$step"; fi
  done
fi

# --- 3. the GUI, offscreen ----------------------------------------------------------------------
gui_check() {  # gui_check NAME DESCRIPTION EXTRA_GREP [ENV ...] -- ARGS...
  local name="$1" what="$2" extra="$3"; shift 3
  local t code
  t=$(now_ms)
  set +e
  run_app "$name" QT_QPA_PLATFORM=offscreen PATHSHARE_SMOKE_QUIT_MS=1500 "$@"
  code=$?
  set -e
  if [[ $code -eq 0 ]] && grep -q "window shown=True closed=True" "$WORK/$name.err" \
     && ! grep -q Traceback "$WORK/$name.err" && { [[ -z "$extra" ]] || grep -q "$extra" "$WORK/$name.err"; }; then
    pass "$what ($(elapsed "$t") ms)"
  else
    fail "$what (exit $code)"; show_logs "$name"
  fi
}
gui_check gui "GUI started offscreen (first run, no vault), showed its window, closed cleanly" "" \
  PATHSHARE_VAULT="$WORK/gui.vault" --
if [[ -f "${packages[0]:-}" ]]; then
  gui_check gui_package "GUI opened on a sealed package (pathshare FILE.age) and closed cleanly" "" \
    PATHSHARE_VAULT="$WORK/demo/college.vault" -- "${packages[0]}"
fi
gui_check gui_job "GUI ran a background job in the frozen worker process (pandas, pyarrow, presidio)" \
  "background job ok: {'frozen': True" PATHSHARE_VAULT="$WORK/gui.vault" PATHSHARE_SMOKE_JOB=1 --
if command -v xvfb-run >/dev/null; then
  # What a Linux desktop user gets: the xcb platform plugin on a (virtual) X server.
  WRAP=(xvfb-run -a)
  gui_check gui_x11 "GUI started on an X server (Xvfb, xcb plugin), showed its window, closed cleanly" "" \
    QT_QPA_PLATFORM=xcb PATHSHARE_VAULT="$WORK/gui.vault" --
  WRAP=()
else
  echo "smoke: SKIP the X11 check: xvfb-run is not installed (apt package xvfb); offscreen checks ran."
fi

if [[ $failures -gt 0 ]]; then
  echo "smoke: $failures check(s) failed." >&2
  exit 1
fi
echo "smoke: all checks passed."
