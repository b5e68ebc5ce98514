# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""model_cache_values filter; documented in model_cache_values.yml."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.odp.model_engine.plugins.module_utils.errors import OdpError
from ansible_collections.odp.model_engine.plugins.module_utils.model_cache import chart_values


def model_cache_values(value):
    if value is not None and not isinstance(value, dict):
        raise AnsibleFilterError("model_cache_values expects the model_engine_model_cache dict, got %s" % type(value).__name__)
    try:
        return chart_values(value)
    except OdpError as e:
        raise AnsibleFilterError(str(e))


class FilterModule(object):
    def filters(self):
        return {"model_cache_values": model_cache_values}
