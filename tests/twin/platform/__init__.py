"""Platform half of the local twin: S3, model-engine API, endpoint builder, pod simulator, faults.

Nothing in ``plugins/`` or ``roles/`` may import this package; it is test infrastructure.
"""
