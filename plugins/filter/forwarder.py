# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""forwarder_drift filter; documented in forwarder_drift.yml."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.odp.model_engine.plugins.module_utils.registry import image_tag

FORWARDER = "http-forwarder"
BUILDER = "model-engine-endpoint-builder"


def _containers(deployment):
    return ((((deployment or {}).get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []


def _control_plane_image(control_plane):
    """The builder's image: a string, or the builder Deployment (its container of that name, else the first)."""
    if isinstance(control_plane, str):
        return control_plane
    if not isinstance(control_plane, dict):
        raise AnsibleFilterError("forwarder_drift: the control plane must be an image or the endpoint builder's Deployment")
    containers = _containers(control_plane)
    chosen = next((c for c in containers if c.get("name") == BUILDER), containers[0] if containers else {})
    return chosen.get("image")


def forwarder_drift(deployments, control_plane, only_drifted=False):
    """Each endpoint Deployment with its http-forwarder image and whether its tag differs from the control plane's."""
    if not isinstance(deployments, list):
        raise AnsibleFilterError("forwarder_drift expects a list of Deployment objects")
    expected_image = _control_plane_image(control_plane)
    expected = image_tag(expected_image)
    if not expected:
        raise AnsibleFilterError("forwarder_drift: the control plane has no image")
    out = []
    for dep in deployments:
        meta = dep.get("metadata") or {}
        labels = meta.get("labels") or {}
        forwarder = next((c for c in _containers(dep) if c.get("name") == FORWARDER), None)
        if forwarder is None:
            continue  # not an endpoint built by model-engine (or a kind without a forwarder)
        tag = image_tag(forwarder.get("image"))
        out.append({"name": labels.get("endpoint_name") or meta.get("name"), "endpoint_id": labels.get("endpoint_id"),
                    "deployment": meta.get("name"), "namespace": meta.get("namespace"), "created_by": labels.get("created_by"),
                    "forwarder_image": forwarder.get("image"), "forwarder_tag": tag, "control_plane_image": expected_image,
                    "control_plane_tag": expected, "drifted": tag != expected})
    out.sort(key=lambda e: e["name"] or "")
    return [e for e in out if e["drifted"]] if only_drifted else out


class FilterModule(object):
    def filters(self):
        return {"forwarder_drift": forwarder_drift}
