#!/usr/bin/env bash
# Build the collection (ansible-galaxy collection build), run ansible-builder create (no container engine here,
# so no image build) and check the generated context: the collection tarball with the inventory plugin, its
# install step, the collection's Python requirements, the Galaxy requirements and the helm install step.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/${VENV:-.venv}/bin:$PATH"
ctx=.build/ee-context
coll=.build/ee-collection
rm -rf "$ctx" "$coll"
mkdir -p "$coll"
ansible-galaxy collection build --force --output-path "$coll" . >/dev/null
ansible-builder create -f execution-environment.yml -c "$ctx" >/dev/null
fail=0
tarball=$(ls "$ctx"/_build/collection/odp-model_engine-*.tar.gz 2>/dev/null | head -1 || true)
if [ -z "$tarball" ]; then
  echo "EE: the odp.model_engine collection tarball is missing from the context"; fail=1
else
  listing=$(tar -tzf "$tarball")
  for f in plugins/inventory/endpoints.py plugins/module_utils/api_client.py plugins/module_utils/endpoints.py \
           plugins/module_utils/reservation.py meta/execution-environment.yml requirements.txt meta/ee-bindep.txt; do
    grep -qx "$f" <<<"$listing" || { echo "EE: $f missing from $(basename "$tarball")"; fail=1; }
  done
fi
grep -q 'ansible-galaxy collection install .*odp-model_engine-' "$ctx"/Containerfile "$ctx"/Dockerfile 2>/dev/null \
  || { echo "EE: the collection install step is missing"; fail=1; }
grep -q 'kubernetes==37.0.1' "$ctx"/_build/requirements.txt || { echo "EE: requirements.txt missing from the context"; fail=1; }
grep -q 'kubernetes.core' "$ctx"/_build/requirements.yml || { echo "EE: collections/requirements.yml missing"; fail=1; }
grep -q 'install_helm.sh' "$ctx"/Containerfile "$ctx"/Dockerfile 2>/dev/null || { echo "EE: helm install step missing"; fail=1; }
[ "$fail" = 0 ] && echo "ansible-builder create: context in $ctx is complete ($(basename "${tarball:-none}") with the inventory plugin)"
exit $fail
