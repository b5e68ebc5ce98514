# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja2 filters for Kubernetes quantities; documented in the sidecar YAML files."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.odp.model_engine.plugins.module_utils.quantity import (
    QuantityError,
    format_bytes,
    quantity_to_bytes,
    quantity_to_cores,
)


def _wrap(func):
    def inner(value, *args):
        try:
            return func(value, *args)
        except (QuantityError, TypeError, ValueError) as e:
            raise AnsibleFilterError(str(e))
    inner.__name__ = func.__name__
    return inner


def quantity_bytes(value):
    return quantity_to_bytes(value, field="quantity_bytes input")


def quantity_cores(value):
    return quantity_to_cores(value, field="quantity_cores input")


def human_bytes(value):
    return format_bytes(value)


class FilterModule(object):
    def filters(self):
        return {
            "quantity_bytes": _wrap(quantity_bytes),
            "quantity_cores": _wrap(quantity_cores),
            "human_bytes": _wrap(human_bytes),
        }
