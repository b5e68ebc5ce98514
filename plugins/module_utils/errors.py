# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Exceptions shared by module_utils that must not pull in heavy clients to be caught."""

from __future__ import annotations


class KubeError(Exception):
    """A Kubernetes API call failed or the client could not be configured; the message says which."""
