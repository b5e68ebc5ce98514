# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  connection:
    description:
      - How the gateway is reached. V(url) sends requests to O(url) (an ingress, or an address you forward yourself).
      - V(kubernetes) reaches the gateway Service O(service_namespace)/O(service) port O(service_port) through the
        Kubernetes API, as C(kubectl port-forward svc/model-engine -n llm-core 5000:80) does, with the Kubernetes
        connection options (O(kubeconfig), O(context), ...) and no background process. Each request goes through a
        C(pods/portforward) tunnel to a Ready pod behind the Service (the API server's service proxy cannot be used,
        since it consumes the C(Authorization) header the gateway reads the user from). A Service without a ready
        endpoint fails with C(no endpoints available for service "model-engine"). O(url), O(validate_certs) and
        O(ca_path) are then not used.
      - If not set, the environment variable E(MODEL_ENGINE_CONNECTION) is used.
    type: str
    default: url
    choices: [url, kubernetes]
  service:
    description: With O(connection=kubernetes), the gateway Service.
    type: str
    default: model-engine
  service_namespace:
    description: With O(connection=kubernetes), the namespace of the gateway Service (the control plane's).
    type: str
    default: llm-core
  service_port:
    description: With O(connection=kubernetes), the Service port (the runbook's C(5000:80) forwards port 80).
    type: int
    default: 80
  url:
    description:
      - Base URL of the model-engine gateway, for example C(https://model-engine.dev.odp.om) or the
        address of C(kubectl port-forward svc/model-engine -n llm-core 5000:80). Required with O(connection=url).
      - If not set, the environment variable E(MODEL_ENGINE_URL) is used.
    type: str
    aliases: [model_engine_url]
  user_id:
    description:
      - The model-engine user id. It is sent as the HTTP Basic username with an empty password,
        as the gateway expects. Required by every request to the gateway.
      - If not set, the environment variable E(MODEL_ENGINE_USER_ID) is used.
    type: str
  validate_certs:
    description:
      - Verify the gateway's TLS certificate. Only set to V(false) for a gateway you trust.
      - If not set, the environment variable E(MODEL_ENGINE_VALIDATE_CERTS) is used.
    type: bool
    default: true
  ca_path:
    description:
      - PEM bundle of the CA that signed the gateway certificate; a path that is not a file fails before the first
        request.
      - If not set, the environment variable E(MODEL_ENGINE_CA_PATH) is used. The playbooks and roles set it from
        the inventory variable C(model_engine_ca_path).
    type: path
  request_timeout:
    description:
      - Seconds to wait for one HTTP answer from the gateway.
    type: float
    default: 30
  retries:
    description:
      - How many times a request is retried, with jittered exponential backoff, after HTTP 429, 502,
        503 or 504, a connection error or a timeout. Other errors (every 4xx, and 500) are never retried.
    type: int
    default: 4
notes:
  - All connection options can be set once for a play with
    C(module_defaults) and the action group C(group/odp.model_engine.model_engine).
"""
