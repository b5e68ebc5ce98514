#!/usr/bin/env bash
# Render the documentation of every plugin of the collection with ansible-doc; fail on any error or
# warning, and on a plugin without documentation.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/${VENV:-.venv}/bin:$PATH"
status=0
count=0
check() {  # type fqcn
  local out
  if ! out=$(ansible-doc -t "$1" "$2" 2>&1); then
    echo "FAIL ansible-doc -t $1 $2"; echo "$out" | head -20; status=1; return
  fi
  if grep -qE '^\[(WARNING|ERROR)\]' <<<"$out"; then
    echo "FAIL ansible-doc -t $1 $2 printed warnings:"; grep -E '^\[(WARNING|ERROR)\]' <<<"$out"; status=1; return
  fi
  count=$((count + 1))
}
for f in plugins/modules/*.py; do
  [ -e "$f" ] || continue
  check module "odp.model_engine.$(basename "$f" .py)"
done
for f in plugins/inventory/*.py; do
  [ -e "$f" ] || continue
  check inventory "odp.model_engine.$(basename "$f" .py)"
done
for f in plugins/filter/*.yml; do
  [ -e "$f" ] || continue
  check filter "odp.model_engine.$(basename "$f" .yml)"
done
# The collection listing must show every module too.
listed=$(ansible-doc -t module -l odp.model_engine 2>/dev/null | wc -l)
modules=$(ls plugins/modules/*.py 2>/dev/null | wc -l)
if [ "$listed" -ne "$modules" ]; then echo "FAIL ansible-doc -l lists $listed modules, plugins/modules has $modules"; status=1; fi
echo "ansible-doc: $count plugin docs rendered"
exit $status
