# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pod_summary filter; documented in pod_summary.yml."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.odp.model_engine.plugins.module_utils.podstate import pod_summary as _pod_summary


def pod_summary(pod):
    if not isinstance(pod, dict):
        raise AnsibleFilterError("pod_summary expects a Pod object (a dict), got %s" % type(pod).__name__)
    return _pod_summary(pod)


class FilterModule(object):
    def filters(self):
        return {"pod_summary": pod_summary}
