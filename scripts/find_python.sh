#!/usr/bin/env bash
# Print the path of a Python >= 3.12 (hysts' detector runtime needs it), preferring 3.12 (what the
# pins are tested with): PATH first, then pyenv's versions.
set -euo pipefail
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; }
cands=()
for c in python3.12 python3 python3.13; do p=$(command -v "$c" 2>/dev/null) && cands+=("$p"); done
if command -v pyenv >/dev/null 2>&1; then
  root=$(pyenv root)
  cands+=($(ls -d "$root"/versions/3.12*/bin/python 2>/dev/null | sort -V -r))
  cands+=($(ls -d "$root"/versions/3.1[3-9]*/bin/python 2>/dev/null | sort -V))
fi
for p in "${cands[@]}"; do
  if [[ $p == *3.12* ]] && ok "$p"; then echo "$p"; exit 0; fi
done
for p in "${cands[@]}"; do if ok "$p"; then echo "$p"; exit 0; fi; done
echo "error: no Python >= 3.12 found; install one (e.g. 'pyenv install 3.12') and re-run 'make setup'" >&2
exit 1
