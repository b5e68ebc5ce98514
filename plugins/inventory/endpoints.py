# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: endpoints
short_description: The LLM endpoints of a model-engine environment as inventory hosts
version_added: 0.2.0
author:
  - ODP platform team (@odp-platform)
description:
  - Adds one host per LLM endpoint of a model-engine environment, named by the endpoint name, so that
    playbooks run per endpoint and C(--limit), forks and AWX job slicing reach single endpoints.
  - "The hosts come from two sources: the endpoints the environment B(declares) (the list in the group
    variable O(declarations_var), C(model_engine_endpoints) by default, or O(declarations) inline) and,
    unless O(include_live=false), the endpoints the gateway B(lists) for this user
    (C(GET /v1/llm/model-endpoints), keeping those whose C(spec.created_by) is O(user_id): public
    endpoints of other users are not ours)."
  - "B(Where the declarations and the gateway settings come from.) Vars plugins such as
    C(host_group_vars) run only after the inventory plugins, so this plugin reads the
    C(group_vars/all) files (C(group_vars/all.yml) or every file under C(group_vars/all/), in the
    order Ansible loads them) of the directory that holds its configuration file itself, then
    applies extra vars (C(-e)) on top, as Ansible's variable precedence does. The variables named
    under each option below (C(model_engine_url), C(model_engine_user), ...) are templated with those
    same variables, so the C(lookup) of E(MODEL_ENGINE_USER_ID) that the dev, staging and prod group_vars
    use for C(model_engine_user) works; an option set in the configuration file wins over them, the environment variable is the
    last fallback. The local inventory therefore needs no setting of its own: C(python -m tests.twin up)
    writes C(model_engine_url) and C(model_engine_user) into C(inventories/local/group_vars/all/twin.yml)."
  - 'The connection options O(url) and O(user_id) may also be Jinja2 templates over those variables,
    for example C(url: "{{ model_engine_url }}").'
  - "Every host gets C(ansible_connection: local) and C(ansible_python_interpreter: \"{{ ansible_playbook_python }}\"):
    the tasks of an endpoint run on the controller (or the AWX execution environment) and talk to the
    gateway and the cluster over the network, as the C(model_engine) host of the static inventory does."
  - "Host variables: C(model_engine_endpoint), the declaration (the runbook's JSON body) or V(null) for an
    endpoint that is live but not declared; and, when O(include_live) is on, C(model_engine_endpoint_live),
    V(null) for a declared endpoint that does not exist, else a summary of the gateway's record: C(id),
    C(name), C(status), C(status_reason), C(k8s_resource_name) (C(launch-endpoint-id-<id with _ as ->)),
    C(owner) (C(spec.created_by)), C(image_tag) (C(inference_framework_image_tag)), C(model_name),
    C(available_workers), C(unavailable_workers), C(serving) (READY and at least one available worker),
    C(gpu_type), C(gpus), C(labels), C(public_inference), C(created_at), C(last_updated_at).
    With O(include_live=false) C(model_engine_endpoint_live) is not defined (unknown, not absent)."
  - "Groups, all children of O(parent_group): C(declared); C(undeclared) (live, not declared);
    C(absent) (declared, not live); by status C(ready) (READY), C(pending) (UPDATE_PENDING,
    UPDATE_IN_PROGRESS), C(failed) (UPDATE_FAILED), C(deleting) (DELETE_IN_PROGRESS);
    C(gpu_type_<gpu type>) and C(<label>_<value>) for each label key in O(label_groups) (C(team_<team>) by
    default), taken from the declaration, else from the live record. Group names are sanitized as Ansible
    does (C(gpu_type_nvidia-tesla-t4) becomes C(gpu_type_nvidia_tesla_t4)). These groups exist even when
    empty, so C(--limit failed) never names an unknown group."
  - O(compose), O(groups) and O(keyed_groups) see the host variables above plus the C(group_vars/all)
    variables and extra vars read as described.
  - "A gateway that cannot be read (down, refusing the user, a bad URL) fails this inventory source with
    a message that names the URL and the cause. Ansible then goes on with the other sources of the
    inventory (a warning, not an error, unless C(ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED=true)), so
    the static C(model_engine) host stays usable: the control-plane playbooks, such as an emergency
    revert, still run while the gateway is down. With O(cache=true) a list read within O(cache_timeout)
    is served from the cache without calling the gateway at all."
notes:
  - The configuration file must be named C(<anything>.model_engine.yml) or C(<anything>.model_engine.yaml)
    (or C(model_engine.yml)) and sit in the inventory directory, next to C(group_vars/).
  - Enable the plugin with C(enable_plugins) in the C([inventory]) section of C(ansible.cfg), or rely on
    the C(auto) inventory plugin.
  - "The cache holds the gateway's list (for one URL and user), never the declarations, which are re-read
    on every run; C(ansible-inventory --flush-cache) (or C(meta: refresh_inventory)) reads the gateway again."
extends_documentation_fragment:
  - ansible.builtin.constructed
  - ansible.builtin.inventory_cache
options:
  plugin:
    description:
      - The name of this plugin. It must be V(odp.model_engine.endpoints) for this plugin to recognize the file.
    type: str
    required: true
    choices: [odp.model_engine.endpoints]
  declarations:
    description:
      - The declared endpoints inline, each a runbook body with at least C(name). When set,
        O(declarations_var) is not read.
    type: list
    elements: dict
  declarations_var:
    description:
      - The variable of the inventory's C(group_vars/all) (or extra vars) that lists the declared endpoints.
      - A missing variable means no declared endpoint.
    type: str
    default: model_engine_endpoints
  include_live:
    description:
      - Also read the endpoints the gateway lists for O(user_id), to add the live record to every host,
        the undeclared hosts and the status groups.
      - V(false) builds the hosts from the declarations only, without any request.
    type: bool
    default: true
    env:
      - name: MODEL_ENGINE_INVENTORY_INCLUDE_LIVE
  url:
    description:
      - Base URL of the model-engine gateway, for example C(https://model-engine.dev.odp.om).
      - Required when O(include_live=true).
    type: str
    vars:
      - name: model_engine_url
    env:
      - name: MODEL_ENGINE_URL
  user_id:
    description:
      - The model-engine user id, sent as the HTTP Basic username with an empty password. Only the
        endpoints created by this user become hosts.
      - Required when O(include_live=true).
    type: str
    vars:
      - name: model_engine_user
    env:
      - name: MODEL_ENGINE_USER_ID
  validate_certs:
    description:
      - Verify the gateway's TLS certificate.
    type: bool
    default: true
    vars:
      - name: model_engine_validate_certs
    env:
      - name: MODEL_ENGINE_VALIDATE_CERTS
  ca_path:
    description:
      - PEM bundle of the CA that signed the gateway certificate.
    type: path
    vars:
      - name: model_engine_ca_path
    env:
      - name: MODEL_ENGINE_CA_PATH
  connection:
    description:
      - V(url) reads the gateway at O(url); V(kubernetes) reaches the gateway Service O(service_namespace)/O(service)
        through the Kubernetes API (a port-forward tunnel, with the kubeconfig O(kubeconfig)), as the modules'
        C(connection) option does; O(url) is then not needed.
    type: str
    default: url
    choices: [url, kubernetes]
    vars:
      - name: model_engine_connection
    env:
      - name: MODEL_ENGINE_CONNECTION
  service:
    description: With O(connection=kubernetes), the gateway Service.
    type: str
    default: model-engine
  service_namespace:
    description: With O(connection=kubernetes), the namespace of the gateway Service.
    type: str
    default: llm-core
    vars:
      - name: model_engine_namespace
  kubeconfig:
    description: With O(connection=kubernetes), the kubeconfig file (the Kubernetes client's defaults otherwise).
    type: path
    vars:
      - name: k8s_kubeconfig
    env:
      - name: K8S_AUTH_KUBECONFIG
  request_timeout:
    description:
      - Seconds to wait for the gateway's answer.
    type: float
    default: 30
  retries:
    description:
      - How many times the list request is retried, with jittered exponential backoff, after HTTP 429,
        502, 503 or 504, a connection error or a timeout.
    type: int
    default: 3
  parent_group:
    description:
      - "The group every endpoint host belongs to (through C(declared) or C(undeclared)), and the parent
        of the groups this plugin creates. Target it in plays with C(hosts: llm_endpoints)."
    type: str
    default: llm_endpoints
  label_groups:
    description:
      - Label keys that make groups C(<key>_<value>), from the declaration's C(labels), else from the
        live record's C(spec.labels).
    type: list
    elements: str
    default: [team]
"""

EXAMPLES = r"""
---
# inventories/local/endpoints.model_engine.yml: the declarations of group_vars/all/main.yml and the
# endpoints of the twin (URL and user from group_vars/all/twin.yml, written by `python -m tests.twin up`).
plugin: odp.model_engine.endpoints

---
# Declarations only: no request to the gateway (model_engine_endpoint_live is then undefined).
plugin: odp.model_engine.endpoints
include_live: false

---
# Explicit gateway settings (these win over the group vars), and a cache that spares the gateway
# one list request per run for five minutes.
plugin: odp.model_engine.endpoints
url: https://model-engine.dev.odp.om
user_id: "{{ lookup('ansible.builtin.env', 'MODEL_ENGINE_USER_ID') }}"
ca_path: /etc/pki/ca-trust/source/anchors/odp-root-ca.pem
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: /tmp/odp-model-engine-inventory
cache_timeout: 300

---
# Constructed features: groups by framework image tag and by product label, a variable for the
# serving state, and a group of endpoints that are READY but have no available worker.
plugin: odp.model_engine.endpoints
label_groups: [team, product]
keyed_groups:
  - prefix: image
    key: model_engine_endpoint_live.image_tag | default('none', true)
compose:
  endpoint_serving: model_engine_endpoint_live.serving | default(false)
groups:
  not_serving: model_engine_endpoint_live is not none and model_engine_endpoint_live.status == 'READY'
               and not model_engine_endpoint_live.serving

# Then, for example:
#   ansible-inventory -i inventories/local --graph
#   ansible-playbook -i inventories/local playbooks/verify_endpoint.yml --limit test-endpoint-v1
#   ansible-playbook -i inventories/dev playbooks/diagnose_endpoint.yml --limit failed
"""

import os
import weakref
from collections.abc import Mapping

from ansible.errors import AnsibleError, AnsibleParserError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.utils.vars import combine_vars

from ansible_collections.odp.model_engine.plugins.module_utils.api_client import ModelEngineClient
from ansible_collections.odp.model_engine.plugins.module_utils.endpoints import annotate, list_endpoints
from ansible_collections.odp.model_engine.plugins.module_utils.errors import OdpError

try:  # ansible-core >= 2.19 (data tagging): strings are templated only when trusted
    from ansible.template import trust_as_template

    HAS_DATA_TAGGING = True
except ImportError:  # older cores template every string an inventory plugin sets, unless marked unsafe
    HAS_DATA_TAGGING = False

    def trust_as_template(value):
        return value

NAME = "odp.model_engine.endpoints"
CONFIG_SUFFIXES = (".model_engine.yml", ".model_engine.yaml")
CONFIG_NAMES = ("model_engine.yml", "model_engine.yaml")
# option -> the group/extra variable that sets it (the same names as in DOCUMENTATION's ``vars``)
CONNECTION_VARS = {
    "url": "model_engine_url",
    "user_id": "model_engine_user",
    "validate_certs": "model_engine_validate_certs",
    "ca_path": "model_engine_ca_path",
    "connection": "model_engine_connection",
    "service_namespace": "model_engine_namespace",
    "kubeconfig": "k8s_kubeconfig",
}
TEMPLATED_OPTIONS = ("url", "user_id")
STATUS_GROUPS = {
    "READY": "ready",
    "UPDATE_PENDING": "pending",
    "UPDATE_IN_PROGRESS": "pending",
    "UPDATE_FAILED": "failed",
    "DELETE_IN_PROGRESS": "deleting",
}
FIXED_GROUPS = ("declared", "undeclared", "absent", "ready", "pending", "failed", "deleting")
CACHE_FORMAT = 1

# Sources whose parse failed, per inventory being built: the ``auto`` plugin runs this plugin a
# second time on the same file after the enabled entry failed, and must not wait on the gateway again.
_FAILED = {}


# ---------------------------------------------------------------------------- pure helpers
def unsafe(value):
    """Mark data that came from the gateway as never to be templated."""
    if HAS_DATA_TAGGING:
        return value  # untrusted already: only strings tagged as trusted are templated
    from ansible.utils.unsafe_proxy import wrap_var

    return wrap_var(value)


def live_summary(record):
    """The host variable ``model_engine_endpoint_live`` from one GetLLMModelEndpointV1Response."""
    rec = annotate(record)
    spec = record.get("spec") or {}
    resources = spec.get("resource_state") or {}
    deployment = spec.get("deployment_state") or {}
    return {
        "id": record.get("id"),
        "name": record.get("name"),
        "status": record.get("status"),
        "status_reason": rec.get("status_reason"),
        "k8s_resource_name": rec.get("k8s_resource_name"),
        "owner": spec.get("created_by"),
        "image_tag": record.get("inference_framework_image_tag"),
        "model_name": record.get("model_name"),
        "available_workers": rec["available_workers"],
        "unavailable_workers": int(deployment.get("unavailable_workers") or 0),
        "serving": rec["serving"],
        "gpu_type": resources.get("gpu_type"),
        "gpus": resources.get("gpus"),
        "labels": dict(spec.get("labels") or {}),
        "public_inference": spec.get("public_inference"),
        "created_at": spec.get("created_at"),
        "last_updated_at": spec.get("last_updated_at"),
    }


def owned_records(records, user_id):
    """The list answer holds the caller's team's endpoints and every public one: keep the user's."""
    return [r for r in records or [] if isinstance(r, Mapping) and (r.get("spec") or {}).get("created_by") == user_id]


def check_declarations(declarations, source):
    """Each declaration is a mapping with a unique string ``name``; the message names the culprit."""
    if declarations is None:
        return []
    if not isinstance(declarations, list):
        raise AnsibleParserError("%s must be a list of endpoint definitions, got %s" % (source, type(declarations).__name__))
    seen = set()
    for index, item in enumerate(declarations):
        name = item.get("name") if isinstance(item, Mapping) else None
        if not isinstance(name, str) or not name:
            raise AnsibleParserError("%s[%d] must be a mapping with a non-empty 'name' (the endpoint name)" % (source, index))
        if name in seen:
            raise AnsibleParserError("%s declares endpoint %r twice" % (source, name))
        seen.add(name)
    return list(declarations)


def endpoint_hosts(declarations, live_records):
    """[(name, declaration or None, live summary or None)]: declared first in their order, then the
    undeclared live endpoints by name. ``live_records`` None means the live state is unknown."""
    live = {r["name"]: live_summary(r) for r in live_records or [] if r.get("name")}
    hosts = [(d["name"], d, live.pop(d["name"], None)) for d in declarations]
    hosts.extend((name, None, live[name]) for name in sorted(live))
    return hosts


def _label(source, key):
    labels = (source or {}).get("labels")
    value = labels.get(key) if isinstance(labels, Mapping) else None
    return value if value not in (None, "") else None


def host_groups(declaration, live, include_live, label_keys):
    """The groups of one endpoint host (unsanitized names)."""
    groups = ["declared" if declaration is not None else "undeclared"]
    if include_live and live is None:
        groups.append("absent")
    if live is not None and live.get("status") in STATUS_GROUPS:
        groups.append(STATUS_GROUPS[live["status"]])
    gpu_type = (declaration or {}).get("gpu_type") or (live or {}).get("gpu_type")
    if gpu_type:
        groups.append("gpu_type_%s" % gpu_type)
    for key in label_keys or []:
        value = _label(declaration, key) or _label(live, key)
        if value is not None:
            groups.append("%s_%s" % (key, value))
    return groups


# ---------------------------------------------------------------------------- the plugin
class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    """One host per LLM endpoint: the declarations of the environment and the gateway's list."""

    NAME = NAME
    _parent = None

    def verify_file(self, path):
        if not super().verify_file(path):
            return False
        base = os.path.basename(path)
        return base.endswith(CONFIG_SUFFIXES) or base in CONFIG_NAMES

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        key = (id(getattr(inventory, "__wrapped__", inventory)), os.path.abspath(path))
        earlier = _FAILED.get(key)
        if earlier is not None and earlier[0]() is getattr(inventory, "__wrapped__", inventory):
            raise AnsibleParserError(earlier[1])
        try:
            self._parse(path, cache)
        except AnsibleError as e:
            self._remember_failure(inventory, key, to_native(e))
            raise

    @staticmethod
    def _remember_failure(inventory, key, message):
        for gone in [k for k, (ref, _msg) in _FAILED.items() if ref() is None]:
            del _FAILED[gone]
        try:
            _FAILED[key] = (weakref.ref(getattr(inventory, "__wrapped__", inventory)), message)
        except TypeError:  # not weak-referenceable: do not remember
            pass

    def _parse(self, path, cache):
        config = self._read_config_data(path)
        inventory_vars = self._inventory_vars(path)
        self._set_connection_options(config, inventory_vars)
        declarations = self._declarations(inventory_vars)
        include_live = self.get_option("include_live")
        live_records = self._live_records(path, cache) if include_live else None
        self._populate(declarations, live_records, include_live, inventory_vars)

    # ------------------------------------------------------------------ variables next to the config
    def _inventory_vars(self, path):
        """group_vars/all of the config file's directory, then extra vars, as Ansible would combine them."""
        inventory_dir = os.path.dirname(os.path.abspath(path))
        data = {}
        for found in self.loader.find_vars_files(os.path.join(inventory_dir, "group_vars"), "all"):
            try:
                if HAS_DATA_TAGGING:
                    new = self.loader.load_from_file(found, cache="all", trusted_as_template=True)
                else:
                    new = self.loader.load_from_file(found, cache="all")
            except Exception as e:
                raise AnsibleParserError("cannot read %s: %s" % (found, to_native(e)))
            if new is None:
                continue
            if not isinstance(new, Mapping):
                raise AnsibleParserError("%s must hold a mapping of variables, got %s" % (found, type(new).__name__))
            data = combine_vars(data, new)
        data = combine_vars(data, self._vars or {})
        data.update(inventory_dir=inventory_dir, inventory_file=os.path.abspath(path))
        return data

    def _render(self, value, variables, what):
        self.templar.available_variables = variables
        try:
            return self.templar.template(value)
        except Exception as e:
            raise AnsibleParserError("cannot resolve %s: %s" % (what, to_native(e)))

    def _set_connection_options(self, config, inventory_vars):
        """Options in the config file win; else the group/extra vars (templated); else the env vars."""
        var_options = {}
        for option, var in CONNECTION_VARS.items():
            if var in inventory_vars and inventory_vars[var] is not None:
                var_options[var] = self._render(inventory_vars[var], inventory_vars, "the variable %s (for option %s)" % (var, option))
        direct = dict(config)
        for option in TEMPLATED_OPTIONS:
            value = direct.get(option)
            if isinstance(value, str) and self.templar.is_template(value):
                direct[option] = self._render(value, inventory_vars, "the option %s" % option)
        self.set_options(direct=direct, var_options=var_options)

    def _declarations(self, inventory_vars):
        inline = self.get_option("declarations")
        if inline is not None:
            return check_declarations(inline, "declarations")
        var = self.get_option("declarations_var")
        if var not in inventory_vars:
            return []
        rendered = self._render(inventory_vars[var], inventory_vars, "the declarations in %s" % var)
        return check_declarations(rendered, var)

    # ------------------------------------------------------------------ the gateway and the cache
    def _connection(self):
        url, user_id = self.get_option("url"), self.get_option("user_id")
        if self.get_option("connection") == "kubernetes":
            url = "kubernetes://%s/%s" % (self.get_option("service_namespace"), self.get_option("service"))
        if not url:
            raise AnsibleParserError(
                "%s: no gateway URL: set url in the config file, model_engine_url in group_vars/all or -e, or MODEL_ENGINE_URL "
                "(inventories/local gets it from 'python -m tests.twin up'), or include_live: false for the declarations only" % NAME)
        if not user_id:
            raise AnsibleParserError(
                "%s: no model-engine user for %s: set user_id, model_engine_user in group_vars/all or -e, or MODEL_ENGINE_USER_ID" % (NAME, url))
        return url, user_id

    def _live_records(self, path, cache):
        url, user_id = self._connection()
        use_cache = self.get_option("cache")
        cache_key = self.get_cache_key(path)
        if use_cache and cache:
            try:
                cached = self._cache[cache_key]
            except KeyError:
                cached = None
            if isinstance(cached, Mapping) and cached.get("format") == CACHE_FORMAT and cached.get("url") == url and cached.get("user_id") == user_id:
                self.display.vvv("%s: %d live endpoint(s) of %s from the inventory cache" % (NAME, len(cached["endpoints"]), url))
                return cached["endpoints"]
        records = self._fetch(url, user_id)
        if use_cache:
            self._cache[cache_key] = {"format": CACHE_FORMAT, "url": url, "user_id": user_id, "endpoints": records}
        return records

    def _transport(self):
        """The tunnel to the gateway Service for connection: kubernetes (None for a URL)."""
        if self.get_option("connection") != "kubernetes":
            return None
        from ansible_collections.odp.model_engine.plugins.module_utils.gateway_tunnel import GatewayTunnel
        from ansible_collections.odp.model_engine.plugins.module_utils.kube import Kube

        params = {"kubeconfig": self.get_option("kubeconfig")} if self.get_option("kubeconfig") else {}
        return GatewayTunnel(Kube(params), self.get_option("service_namespace"), self.get_option("service"))

    def _fetch(self, url, user_id):
        try:
            transport = self._transport()
            client = ModelEngineClient(None if transport else url, user_id, validate_certs=self.get_option("validate_certs"),
                                       ca_path=self.get_option("ca_path"), timeout=self.get_option("request_timeout"),
                                       retries=self.get_option("retries"), transport=transport)
            records = list_endpoints(client)
        except (OdpError, ValueError) as e:
            raise AnsibleParserError(
                "%s: cannot list the endpoints of the model-engine gateway at %s for user %s: %s. No endpoint host was added; "
                "set include_live: false to build them from the declarations only, or cache: true to serve a recent list"
                % (NAME, url, user_id, to_native(e)))
        return owned_records(records, user_id)

    # ------------------------------------------------------------------ hosts and groups
    def _group(self, name):
        """Add a group (sanitized) under the parent group; returns its name in the inventory."""
        group = self.inventory.add_group(self._sanitize_group_name(name))
        parent = self._parent
        if parent and group != parent:
            self.inventory.add_child(parent, group)
        return group

    def _populate(self, declarations, live_records, include_live, inventory_vars):
        parent = self.get_option("parent_group")
        self._parent = self.inventory.add_group(self._sanitize_group_name(parent)) if parent else None
        for name in FIXED_GROUPS:
            self._group(name)
        for name, declaration, live in endpoint_hosts(declarations, live_records):
            self._add_endpoint(name, declaration, live, include_live, inventory_vars)

    def _add_endpoint(self, name, declaration, live, include_live, inventory_vars):
        self.inventory.add_host(name)
        for group in host_groups(declaration, live, include_live, self.get_option("label_groups")):
            self.inventory.add_child(self._group(group), name)
        hostvars = {
            "ansible_connection": trust_as_template("local"),  # a constant: shown as plain text by ansible-inventory --list
            "ansible_python_interpreter": trust_as_template("{{ ansible_playbook_python }}"),
            "model_engine_endpoint": declaration,
        }
        if include_live:
            hostvars["model_engine_endpoint_live"] = unsafe(live)
        for key, value in hostvars.items():
            self.inventory.set_variable(name, key, value)
        strict = self.get_option("strict")
        variables = combine_vars(inventory_vars, self.inventory.get_host(name).get_vars())
        self._set_composite_vars(self.get_option("compose"), variables, name, strict=strict)
        self._add_host_to_composed_groups(self.get_option("groups"), variables, name, strict=strict)
        self._add_host_to_keyed_groups(self.get_option("keyed_groups"), variables, name, strict=strict)
