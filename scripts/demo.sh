#!/usr/bin/env bash
# make demo: start the local platform twin and run the main playbook against inventories/local.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
if [ ! -f tests/twin/__main__.py ]; then
  echo "The local platform twin (tests/twin) is not built yet, so there is nothing to run the playbooks against."
  echo "What exists today is covered by 'make test'."
  exit 1
fi
$py -m tests.twin up --detach
playbook=${DEMO_PLAYBOOK:-playbooks/endpoint_status.yml}
echo "=== ansible-playbook -i inventories/local $playbook"
.venv/bin/ansible-playbook -i inventories/local "$playbook"
cat <<MSG

The twin keeps running. Where to look:
  state, URLs and credentials: .twin/twin.json
  kubectl:  .venv/bin/kubectl --kubeconfig .twin/kubeconfig get pods -n llm-core
  gateway:  curl -u test-user-id: \$(jq -r .model_engine_url .twin/twin.json)/v1/llm/model-endpoints
  stop it:  make demo-down
MSG
