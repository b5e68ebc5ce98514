# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to a kubeconfig file, or its content as a dictionary.
      - If not set, the environment variable E(K8S_AUTH_KUBECONFIG), then the default kubeconfig
        (or the in-cluster service account) is used, as with kubernetes.core.
    type: raw
  context:
    description:
      - Kubeconfig context to use. If not set, E(K8S_AUTH_CONTEXT) is used.
    type: str
  host:
    description:
      - URL of the Kubernetes API server. If not set, E(K8S_AUTH_HOST) is used.
    type: str
  api_key:
    description:
      - Bearer token for the API server. If not set, E(K8S_AUTH_API_KEY) is used.
    type: str
  k8s_validate_certs:
    description:
      - Verify the API server's TLS certificate (kubernetes.core's C(validate_certs), renamed so it does not
        collide with the model-engine gateway's C(validate_certs)). If not set, E(K8S_AUTH_VERIFY_SSL) is used.
    type: bool
  k8s_ca_cert:
    description:
      - CA bundle of the API server. If not set, E(K8S_AUTH_SSL_CA_CERT) is used.
    type: path
requirements:
  - kubernetes >= 24.2.0
"""
