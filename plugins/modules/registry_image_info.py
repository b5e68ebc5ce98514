#!/usr/bin/python
# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: registry_image_info
short_description: Check that container images exist in their OCI registry before anything is deployed
version_added: 0.2.0
description:
  - Asks the registry of each image whether its manifest exists, with
    C(HEAD /v2/<repository>/manifests/<tag or digest>) of the OCI distribution API, and the C(Accept)
    types of OCI and Docker v2 manifests and indexes.
  - Authenticates the way a container runtime does. A C(401) with a C(Bearer) challenge is answered
    with a token from the challenge's realm (requested with the credentials when there are any); a C(Basic)
    challenge with the credentials.
  - Credentials come from O(username) and O(password), or from a C(kubernetes.io/dockerconfigjson) pull
    Secret on the cluster (O(pull_secret)), looked up by the image's registry host, as a kubelet does.
  - When an image is missing, reports the registry's own answer (for example C(MANIFEST_UNKNOWN)), read from
    the error document of a C(GET) because a C(HEAD) answer has no body.
  - An image the registry cannot be asked about (connection, TLS, authentication, token service or a
    C(5xx)) always fails the task, whatever O(fail_on_missing) says. Unknown is not missing.
  - Read-only. Check mode runs the same requests.
author:
  - ODP platform team (@odp-platform)
options:
  images:
    description:
      - Image references, C([host[:port]/]repository[:tag][@digest]). Without a host the image is on
        Docker Hub, and without a tag it is C(latest), as for a container runtime.
    type: list
    elements: str
    required: true
  registry_url:
    description:
      - Ask this registry (C(http://) or C(https://) base URL) instead of C(https://<host of the image>).
        Use it for a mirror, or for a local registry that serves the image's host.
      - Credentials are still looked up by the image's host in the pull Secret, then by this URL's host.
    type: str
  username:
    description: User name for the registry (or its token service). Use it with O(password).
    type: str
  password:
    description: Password or access token of O(username).
    type: str
  pull_secret:
    description:
      - Name of a C(kubernetes.io/dockerconfigjson) (or legacy C(kubernetes.io/dockercfg)) Secret in
        O(namespace) to take the credentials from, read through the Kubernetes API.
      - Needs the Kubernetes connection options below. Not used together with O(username).
    type: str
  namespace:
    description: Namespace of O(pull_secret).
    type: str
    default: llm-core
  validate_certs:
    description: Verify the registry's TLS certificate.
    type: bool
    default: true
  ca_path:
    description: PEM file of the CA that signed the registry's (and its token service's) certificate.
    type: path
  timeout:
    description: Seconds to wait for each HTTP answer.
    type: float
    default: 30
  fail_on_missing:
    description:
      - Fail when an image does not exist, naming each missing image and the registry's answer.
      - With V(false), the result lists the missing images and the task succeeds.
    type: bool
    default: true
notes:
  - The Kubernetes connection options are only needed with O(pull_secret).
  - Registries that hand out identity tokens in the docker config (C(identitytoken)) are not supported;
    give a user name and password (or a robot account's) instead.
extends_documentation_fragment:
  - odp.model_engine.k8s_auth
  - odp.model_engine.attributes
  - odp.model_engine.attributes.INFO_MODULE
  - odp.model_engine.attributes.ACTIONGROUP_K8S
"""

EXAMPLES = r"""
- name: Refuse a model-engine tag that is not in the registry, before touching the cluster
  odp.model_engine.registry_image_info:
    images:
      - registry.odp.om/odp-development/oman-national-llm/model-engine:onprem20
      - registry.odp.om/odp-development/oman-national-llm/vllm:vllm-onprem
    pull_secret: registry-odp-om-pull
    namespace: llm-core
    ca_path: /etc/pki/odp/registry-ca.pem

- name: Ask the local twin's registry, which serves registry.odp.om images over plain HTTP
  odp.model_engine.registry_image_info:
    images: ["registry.odp.om/odp-development/oman-national-llm/model-engine:{{ model_engine_tag }}"]
    registry_url: "{{ model_engine_registry_url }}"
    pull_secret: "{{ model_engine_registry_pull_secret }}"
    kubeconfig: "{{ k8s_kubeconfig }}"

- name: Only report
  odp.model_engine.registry_image_info:
    images: "{{ candidate_images }}"
    username: "{{ registry_user }}"
    password: "{{ registry_password }}"
    fail_on_missing: false
  register: found
"""

RETURN = r"""
images:
  description: One entry per image, in the order of O(images).
  returned: always
  type: list
  elements: dict
  contains:
    image:
      description: The image as given.
      type: str
      sample: registry.odp.om/odp-development/oman-national-llm/model-engine:onprem20
    exists:
      description: The registry has a manifest for that tag or digest.
      type: bool
      sample: true
    digest:
      description: The manifest digest (C(Docker-Content-Digest)) when it exists.
      type: str
      sample: sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270
    media_type:
      description: The manifest's media type when it exists.
      type: str
      sample: application/vnd.oci.image.manifest.v1+json
    status:
      description: HTTP status of the manifest request (200 or 404).
      type: int
      sample: 200
    message:
      description: C(found), or the registry's answer for a missing image.
      type: str
      sample: "HTTP 404 MANIFEST_UNKNOWN: manifest unknown (Tag=onprem99)"
    registry:
      description: The registry base URL that was asked.
      type: str
      sample: https://registry.odp.om
    repository:
      description: Repository inside the registry.
      type: str
      sample: odp-development/oman-national-llm/model-engine
    reference:
      description: Tag or digest asked for.
      type: str
      sample: onprem20
missing:
  description: The images that do not exist.
  returned: always
  type: list
  elements: str
  sample: []
all_exist:
  description: Every image exists.
  returned: always
  type: bool
  sample: true
message:
  description: One line for people, naming each missing image and the registry's answer.
  returned: always
  type: str
  sample: every image exists in its registry
"""

from ansible_collections.odp.model_engine.plugins.module_utils.core import ModelEngineModule
from ansible_collections.odp.model_engine.plugins.module_utils.kube import K8S_AUTH_SPEC
from ansible_collections.odp.model_engine.plugins.module_utils.registry import run


def main():
    spec = dict(
        K8S_AUTH_SPEC,
        images=dict(type="list", elements="str", required=True),
        registry_url=dict(type="str"),
        username=dict(type="str"),
        password=dict(type="str", no_log=True),
        pull_secret=dict(type="str", no_log=False),   # the Secret's name, not its content
        namespace=dict(type="str", default="llm-core"),
        validate_certs=dict(type="bool", default=True),
        ca_path=dict(type="path"),
        timeout=dict(type="float", default=30.0),
        fail_on_missing=dict(type="bool", default=True),
    )
    module = ModelEngineModule(argument_spec=spec, supports_check_mode=True, required_together=[("username", "password")],
                               mutually_exclusive=[("username", "pull_secret")])
    module.run(run)


if __name__ == "__main__":
    main()
