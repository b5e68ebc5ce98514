from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.odp.model_engine.plugins.filter.quantity import FilterModule

FILTERS = FilterModule().filters()


def test_filters_convert():
    assert FILTERS["quantity_bytes"]("50Gi") == 53687091200
    assert FILTERS["quantity_cores"]("500m") == 0.5
    assert FILTERS["human_bytes"](53687091200) == "50.0 GiB"


def test_filter_error_names_the_rule():
    with pytest.raises(AnsibleFilterError) as err:
        FILTERS["quantity_bytes"]("50GB")
    assert "not a Kubernetes quantity" in str(err.value)
