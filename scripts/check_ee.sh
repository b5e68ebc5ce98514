#!/usr/bin/env bash
# ansible-builder create (no container engine here, so no build) and a check of the generated context:
# the collection's Python requirements, the Galaxy requirements and the helm install step are in it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/${VENV:-.venv}/bin:$PATH"
ctx=.build/ee-context
rm -rf "$ctx"
ansible-builder create -f execution-environment.yml -c "$ctx" >/dev/null
fail=0
grep -q 'kubernetes==37.0.1' "$ctx"/_build/requirements.txt || { echo "EE: requirements.txt missing from the context"; fail=1; }
grep -q 'kubernetes.core' "$ctx"/_build/requirements.yml || { echo "EE: collections/requirements.yml missing"; fail=1; }
grep -q 'install_helm.sh' "$ctx"/Containerfile "$ctx"/Dockerfile 2>/dev/null || { echo "EE: helm install step missing"; fail=1; }
[ "$fail" = 0 ] && echo "ansible-builder create: context in $ctx is complete"
exit $fail
