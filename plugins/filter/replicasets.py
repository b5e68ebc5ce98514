# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""stale_replicasets filter; documented in stale_replicasets.yml."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError


def _revision(rs):
    try:
        return int(((rs.get("metadata") or {}).get("annotations") or {}).get("deployment.kubernetes.io/revision", 0))
    except (TypeError, ValueError):
        return 0


def stale_replicasets(replicasets, deployments, keep=2):
    """Zero-replica ReplicaSets owned by ``deployments``, oldest first, beyond the newest ``keep`` of each."""
    if not isinstance(replicasets, list):
        raise AnsibleFilterError("stale_replicasets expects a list of ReplicaSet objects")
    keep = int(keep)
    if keep < 0:
        raise AnsibleFilterError("stale_replicasets: keep must not be negative")
    out = []
    for dep in deployments:
        owned = [rs for rs in replicasets
                 if any(o.get("kind") == "Deployment" and o.get("name") == dep for o in (rs.get("metadata") or {}).get("ownerReferences") or [])]
        idle = sorted((rs for rs in owned if not (rs.get("spec") or {}).get("replicas") and not (rs.get("status") or {}).get("replicas")),
                      key=_revision, reverse=True)
        out += sorted(idle[keep:], key=_revision)
    return [rs["metadata"]["name"] for rs in out]


class FilterModule(object):
    def filters(self):
        return {"stale_replicasets": stale_replicasets}
