# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    """What the judge reads of an endpoint, and its limits. The defaults follow the runbook's durations."""

    DOCUMENTATION = r"""
options:
  namespace:
    description: Namespace of the endpoint's Kubernetes objects.
    type: str
    default: llm-core
  gateway_namespace:
    description: Namespace of the model-engine control plane (the endpoint builder Deployment).
    type: str
    default: llm-core
  container:
    description: The container that downloads the model and runs vLLM.
    type: str
    default: main
  model_dir:
    description:
      - The download folder inside O(container) (relative to its working directory). For an endpoint that uses the
        model cache the folder the pod's vLLM loads (C(<mountPath>/model_files)) is measured instead.
    type: str
    default: model_files
  python:
    description: Python interpreter inside O(container), used to list the model folder.
    type: str
    default: python3
  log_lines:
    description: Log lines read of each crashed container (the previous instance's first).
    type: int
    default: 30
  measure_download:
    description:
      - Measure the bytes in the model folder of the pod that downloads (one exec per check), for the percentage,
        rate and ETA, and to tell a stall from a slow download. With V(false) the download is not judged.
    type: bool
    default: true
  pending_timeout:
    description:
      - Seconds an endpoint may stay C(UPDATE_PENDING) while a builder runs before it counts as stuck. A builder
        scaled to 0 (or with no working pod) fails at once.
    type: int
    default: 600
  install_timeout:
    description:
      - Seconds the C(main) container may spend installing the S3 tool (a C(pip install) in its command) before
        any model file appears. The runbook's AWS CLI install takes 5 to 10 minutes.
    type: int
    default: 1200
  stall_timeout:
    description:
      - Seconds without one new byte in the model folder after which the download counts as stalled. It is read off
        the newest file time in the folder, so one slow sample is never a stall; at the runbook's ~4 MB/s progress
        comes in bursts.
    type: int
    default: 600
  min_download_rate:
    description:
      - Bytes per second the automatic C(wait_timeout) is sized for (half the runbook's ~4 MB/s by default). A
        slower download is still followed; only the deadline depends on it.
    type: int
    default: 2000000
  claim_bind_timeout:
    description:
      - With the model cache, seconds the endpoint's claim may stay Pending with no event from its provisioner (only
        C(ExternalProvisioning)) before the provisioner counts as missing. A C(ProvisioningFailed) decides at once.
    type: int
    default: 120
  lock_fresh_seconds:
    description:
      - With the model cache, the age up to which the download lock's heartbeat is fresh (the downloading replica
        rewrites it every 30 seconds). An older lock's holder is gone; replicas break it once it is older than the
        chart's C(modelCache.lockStaleSeconds).
    type: int
    default: 90
"""
