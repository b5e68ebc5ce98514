"""What a model-engine image tag does differently: the twin's behaviour table for control-plane images.

The control plane of every tag here is healthy (the gateway's ``/readyz`` answers 200, the builder pod is Ready),
so a rollout and the gateway check pass.  What differs is what the tag's endpoint builder writes into the
endpoint Deployment; the builder takes the tag from its own Deployment's current image (as it takes the
``http-forwarder`` tag), so ``kubectl set image`` / ``helm upgrade`` of the builder switches the behaviour
for the next build.  Only an endpoint built after the update (a canary) shows the damage:

``onprem22`` (``no_wait_guard``)
    The builder renders the runbook's awscli form (``pip install awscli``, ``aws s3 sync … & sync_pid=$!`` in the
    background) but without the ``while`` wait-for-files guard: vLLM starts on an empty ``model_files`` and
    the pod simulator crashes it with ``No config format found`` (runbook "Premature VLLM Start",
    PREMATURE_START), restart after restart (CrashLoopBackOff).

``onprem23`` (``no_storage_request``)
    The builder drops ``ephemeral-storage`` from the ``main`` container's requests and limits (a broken
    ``${STORAGE_DICT}``).  The pod schedules without its 50Gi reservation and nothing bounds its writable
    layer except the node: the kubelet's node-pressure eviction, which on a real node comes when the download
    fills the disk (``The node was low on resource: ephemeral-storage. … Container main was using …, request
    is 0, …``).  On the twin the small seeded checkpoint fits, so the pod runs and serves; the defect is visible
    in the built objects (main has no ``ephemeral-storage``), and with the ``storage_exceeded`` fault (a model
    as large as a real one) the pod is evicted for node pressure instead of at its own 50Gi limit.
"""

from __future__ import annotations

import re

from .bundle import guard_for, parse_command

BUILDER_BEHAVIOURS = {
    "onprem22": "no_wait_guard",
    "onprem23": "no_storage_request",
}


def builder_behaviour(model_engine_tag: str | None) -> str | None:
    return BUILDER_BEHAVIOURS.get(model_engine_tag or "")


def _awscli_without_guard(command: list) -> list:
    """The main command with the download in the background and no guard before vLLM starts."""
    if len(command) < 3 or command[:2] != ["/bin/bash", "-c"]:
        return command
    parsed = parse_command(command)
    script = command[2].replace(";" + guard_for(parsed.dest), "")
    if parsed.tool == "s5cmd" and parsed.bucket:
        src = f"s3://{parsed.bucket}/{parsed.prefix}".rstrip("/")
        flag = f" --endpoint-url {parsed.endpoint_url}" if parsed.endpoint_url else ""
        awscli = (f"pip install --quiet awscli --no-cache-dir;aws s3 sync {src} {parsed.dest} --no-progress{flag} "
                  "& sync_pid=$!")
        script = re.sub(r"\./s5cmd [^;]*", lambda _m: awscli, script, count=1)
    return [command[0], command[1], script, *command[3:]]


def _drop_main_storage(deployment: dict) -> None:
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        if container["name"] == "main":
            for part in ("requests", "limits"):
                (container.get("resources") or {}).get(part, {}).pop("ephemeral-storage", None)


def apply_builder_behaviour(manifests: dict, model_engine_tag: str | None) -> str | None:
    """Change the manifests ``build_manifests`` produced the way this builder image does; returns the behaviour."""
    behaviour = builder_behaviour(model_engine_tag)
    deployment = manifests["deployment"]
    if behaviour == "no_wait_guard":
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            if container["name"] == "main":
                container["command"] = _awscli_without_guard(container["command"])
    elif behaviour == "no_storage_request":
        _drop_main_storage(deployment)
    return behaviour
