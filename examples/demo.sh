#!/usr/bin/env bash
# A short imagent session on the shipped CC0 photo, on the embedded default
# (no model weights, no network): a removal of a described region, global
# adjustments, an outpaint, an undo, then the log, a diff and a verified replay.
set -euo pipefail
cd "$(dirname "$0")/.."
out=demo-out
rm -rf "$out"
mkdir -p "$out"
export IMAGENT_HOME="$PWD/$out/store"   # a private store, so the demo never touches yours
export IMAGENT_CONFIG="$PWD/$out/no-config.toml"

run() { printf '\n$ %s\n' "$*"; "$@"; }

run imagent edit assets/astronaut.png \
    "remove the space shuttle model at box 345,0,478,300" \
    --session demo -o "$out/1-removed.png"
run imagent ask "make it a bit brighter and add more contrast" -o "$out/2-adjusted.png"
run imagent ask "extend the picture to the right by 25%" -o "$out/3-extended.png"
run imagent undo
run imagent show head -o "$out/4-after-undo.png"
run imagent log
run imagent diff 0 2 -o "$out/diff-0-2.png"
run imagent replay --verify
run imagent export -o "$out/demo-session.zip"

printf '\nDemo images:\n'
for f in "$out"/*.png; do printf '  %s\n' "$PWD/$f"; done
printf 'Session store: %s\nSession bundle: %s\n' "$IMAGENT_HOME" "$PWD/$out/demo-session.zip"
