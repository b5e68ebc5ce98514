#!/usr/bin/env bash
# make demo: start the local platform twin and run the main jobs against inventories/local:
# create the runbook's endpoint (preflight, create, follow it to serving), verify it (every byte of
# the model files against S3, vLLM health/models/completion), then report on the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" ANSIBLE_CONFIG="$PWD/ansible.cfg"
# The on-prem download form (pip install awscli, aws s3 sync, the runbook's while guard), slowed down so that the
# progress lines show the phases: installing the S3 tool, downloading with percent, rate and ETA, 0/2 -> 2/2.
# (The checkpoint is ~1 MB: 50 kB/s makes a ~20 s download; the install takes 6 s instead of the runbook's 5-10 min.)
python -m tests.twin status >/dev/null 2>&1 || python -m tests.twin up --detach --download-rate 50000 --install-seconds 6 >/dev/null
run() { echo; echo "=== ansible-playbook -i inventories/local $*"; ansible-playbook -i inventories/local "$@"; }
run playbooks/create_endpoint.yml -e llm_endpoint_progress_interval=2
run playbooks/verify_endpoint.yml -e endpoint_name=test-endpoint-v1
run playbooks/environment_report.yml
cat <<MSG

The twin keeps running; every playbook in playbooks/ runs against it with -i inventories/local.
  report:   reports/environment-local.md
  state:    .twin/twin.json (URLs, ports, credentials), .twin/twin.log
  kubectl:  .venv/bin/kubectl --kubeconfig .twin/kubeconfig get pods -n llm-core
  diagnose: ansible-playbook playbooks/diagnose_endpoint.yml -e endpoint_name=test-endpoint-v1
  stop it:  make demo-down
MSG
