# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  url:
    description:
      - Base URL of the model-engine gateway, for example C(http://model-engine.llm-core.svc) or the
        address of C(kubectl port-forward svc/model-engine -n llm-core 5000:80).
      - If not set, the environment variable E(MODEL_ENGINE_URL) is used.
    type: str
    required: true
    aliases: [model_engine_url]
  user_id:
    description:
      - The model-engine user id. It is sent as the HTTP Basic username with an empty password,
        as the gateway expects.
      - If not set, the environment variable E(MODEL_ENGINE_USER_ID) is used.
    type: str
    required: true
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
