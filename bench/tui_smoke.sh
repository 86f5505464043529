#!/usr/bin/env bash
# tmux-driven smoke test of the chat UI in a real terminal:
# start `imagent chat` on the demo photo, send a request, undo it, quit cleanly.
# Checks the screen (tmux capture-pane) and the session store (`imagent log --json`)
# at each step. Prints PASS/FAIL; exits 0 with SKIP when tmux is not installed.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
IMAGENT="$ROOT/.venv/bin/imagent"
PY="$ROOT/.venv/bin/python"

if ! command -v tmux >/dev/null 2>&1; then
  echo "SKIP: tmux is not installed (apt-get install -y tmux), so the TUI smoke test did not run"
  exit 0
fi
[ -x "$IMAGENT" ] || { echo "FAIL: $IMAGENT not found; run make install first"; exit 1; }

WORK=$(mktemp -d /tmp/imagent-tui-smoke.XXXXXX)
SESSION="imagent-smoke-$$"
export IMAGENT_HOME="$WORK/store"
export IMAGENT_CONFIG="$WORK/absent.toml"
READY="$WORK/ready"
EXITFILE="$WORK/exit"
OUT="$ROOT/bench/results/tui_smoke.txt"
mkdir -p "$ROOT/bench/results"
: >"$OUT"

cleanup() {
  tmux kill-session -t "$SESSION" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $1"
  echo "--- screen ---"
  tmux capture-pane -p -t "$SESSION" 2>/dev/null | tee -a "$OUT"
  exit 1
}

# wait_for SECONDS COMMAND...: poll until the command succeeds
wait_for() {
  local limit=$1; shift
  local end=$(( $(date +%s) + limit ))
  while [ "$(date +%s)" -le "$end" ]; do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}

screen_has() { tmux capture-pane -p -t "$SESSION" | grep -qF -- "$1"; }
head_is() {
  "$IMAGENT" log --json | "$PY" -c "import json,sys; d=json.load(sys.stdin); \
v={x['id']:x for x in d['versions']}; h=v[d['session']['head']]; \
sys.exit(0 if h['seq']==$1 and len(v)==$2 else 1)"
}

t0=$(date +%s.%N)
tmux new-session -d -s "$SESSION" -x 120 -y 40 \
  "env IMAGENT_TUI_READY_FILE='$READY' TERM=xterm-256color '$IMAGENT' chat '$ROOT/assets/astronaut.png'; echo \$? > '$EXITFILE'; sleep 2"

wait_for 30 test -s "$READY" || fail "imagent chat did not reach an interactive screen within 30 s"
t1=$(date +%s.%N)
echo "started: interactive after $("$PY" -c "print(f'{$t1-$t0:.2f}')") s (in-app $(cat "$READY" | tr -d '\n') s)" | tee -a "$OUT"
wait_for 10 screen_has "version 0 of 1" || fail "the status bar does not show version 0"

tmux send-keys -t "$SESSION" -l "make it a bit brighter"
tmux send-keys -t "$SESSION" Enter
wait_for 30 screen_has "→ version 1" || fail "the request made no version 1"
wait_for 10 head_is 1 2 || fail "the store does not have version 1 as its head"
echo "request: 'make it a bit brighter' → version 1 (screen and store agree)" | tee -a "$OUT"

tmux send-keys -t "$SESSION" C-z
wait_for 30 screen_has "undo → version 0" || fail "ctrl+z did not undo"
wait_for 10 head_is 0 2 || fail "the store head is not the root after undo"
echo "undo: back at version 0, version 1 kept in the history" | tee -a "$OUT"
tmux capture-pane -p -t "$SESSION" >>"$OUT"

tmux send-keys -t "$SESSION" C-q
wait_for 20 test -s "$EXITFILE" || fail "ctrl+q did not quit within 20 s"
code=$(cat "$EXITFILE")
[ "$code" = "0" ] || fail "imagent chat exited with code $code"
echo "quit: exit code 0" | tee -a "$OUT"
echo "PASS: tmux smoke (start, request, undo, quit); screen saved to bench/results/tui_smoke.txt"
