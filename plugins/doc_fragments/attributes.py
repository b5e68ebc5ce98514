# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation
        indicates no change.
"""

    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - This action does not modify state.
  diff_mode:
    support: N/A
    details:
      - This action does not modify state.
  idempotent:
    support: full
"""

    ACTIONGROUP_MODEL_ENGINE = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/odp.model_engine.model_engine) in C(module_defaults) to set the gateway connection once.
    support: full
    membership:
      - odp.model_engine.model_engine
"""

    ACTIONGROUP_K8S_S3 = r"""
options: {}
attributes:
  action_group:
    description:
      - Use C(group/odp.model_engine.k8s) and C(group/odp.model_engine.s3) in C(module_defaults) to set the
        Kubernetes and S3 connections once.
    support: full
    membership:
      - odp.model_engine.k8s
      - odp.model_engine.s3
"""

    ACTIONGROUP_K8S = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/odp.model_engine.k8s) in C(module_defaults) to set the Kubernetes connection once.
    support: full
    membership:
      - odp.model_engine.k8s
"""

    ACTIONGROUP_MODEL_ENGINE_K8S = r"""
options: {}
attributes:
  action_group:
    description:
      - Use C(group/odp.model_engine.model_engine) and C(group/odp.model_engine.k8s) in C(module_defaults) to set the
        gateway and Kubernetes connections once.
    support: full
    membership:
      - odp.model_engine.model_engine
      - odp.model_engine.k8s
"""

    ACTIONGROUP_ALL = r"""
options: {}
attributes:
  action_group:
    description:
      - Use C(group/odp.model_engine.model_engine), C(group/odp.model_engine.k8s) and C(group/odp.model_engine.s3)
        in C(module_defaults) to set the gateway, Kubernetes and S3 connections once.
    support: full
    membership:
      - odp.model_engine.model_engine
      - odp.model_engine.k8s
      - odp.model_engine.s3
"""
