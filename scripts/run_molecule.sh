#!/usr/bin/env bash
# Run every molecule scenario (one per role, under molecule/<scenario>/).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/${VENV:-.venv}/bin:$PATH"
scenarios=()
for f in molecule/*/molecule.yml; do
  [ -e "$f" ] && scenarios+=("$(basename "$(dirname "$f")")")
done
if [ ${#scenarios[@]} -eq 0 ]; then
  echo "molecule: no scenarios yet (there are no roles in roles/)"
  exit 0
fi
for s in "${scenarios[@]}"; do
  echo "=== molecule test -s $s"
  # Forget state left by an earlier run in a folder of the same name ("instances already prepared"
  # would skip prepare, which starts the twin).
  molecule reset -s "$s" >/dev/null 2>&1 || true
  molecule test -s "$s"
done
echo "molecule: ${#scenarios[@]} scenario(s) passed: ${scenarios[*]}"
