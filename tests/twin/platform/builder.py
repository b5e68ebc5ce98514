"""The endpoint builder: a separate asyncio task consuming build tasks like the Celery service builder.

For every task it writes, in the endpoint namespace, the Deployment, Service (80 -> 5000) and HPA
(autoscaling/v2) named ``launch-endpoint-id-<id>``, with the labels/annotations/containers of the real
chart's ``deployment-runnable-image-streaming-gpu.yaml`` template, through the Kubernetes HTTP API.
"""

from __future__ import annotations

import asyncio
import copy
import logging

from kubernetes.client.exceptions import ApiException

from .image_behaviour import apply_builder_behaviour
from .service import LLM_METADATA_KEY, ModelEngine, iso, now, resource_name

log = logging.getLogger("twin.model_engine.builder")
BUILDER_DEPLOYMENT = "model-engine-endpoint-builder"


def _q(v) -> str:
    return str(v)


def build_manifests(rec: dict, bundle, cfg, forwarder_image: str, model_engine_tag: str) -> dict:
    name = resource_name(rec["id"])
    labels = {
        **rec["labels"],   # user labels (team, product, and any extra ones merged by updates)
        "user_id": rec["owner"],
        "team": rec["labels"]["team"],
        "product": rec["labels"]["product"],
        "created_by": rec["created_by"],
        "owner": rec["owner"],
        "env": cfg.context,
        "managed-by": "model-engine",
        "use_scale_launch_endpoint_network_policy": "true",
        "tags.datadoghq.com/env": cfg.context,
        "tags.datadoghq.com/version": model_engine_tag,
        "tags.datadoghq.com/service": rec["name"],
        "endpoint_id": rec["id"],
        "endpoint_name": rec["name"],
    }
    pod_labels = dict(labels, app=name, version="v1")
    change_cause = (f"Deployment at {now().strftime('%Y-%m-%d %H:%M:%S.%f')} UTC. Using deployment constructed from "
                    f"model bundle ID {bundle.id}, model bundle name {bundle.name}, endpoint ID {rec['id']}")
    resources = {"cpu": _q(rec["cpus"]), "memory": _q(rec["memory"]), "ephemeral-storage": _q(rec["storage"])}
    if rec["gpus"]:
        resources["nvidia.com/gpu"] = _q(rec["gpus"])
    main_env = [
        {"name": "AWS_PROFILE", "value": "default"},
        {"name": "AWS_CONFIG_FILE", "value": "/opt/.aws/config"},
        {"name": "DD_SERVICE", "value": rec["name"]},
        {"name": "DD_ENV", "value": cfg.context},
        {"name": "DD_VERSION", "value": model_engine_tag},
        {"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
    ]
    if cfg.s3_endpoint_url:
        main_env.insert(2, {"name": "S3_ENDPOINT_URL", "value": cfg.s3_endpoint_url})
    forwarder_cmd = [
        "/usr/bin/dumb-init", "--", "ddtrace-run", "python", "-m",
        "model_engine_server.inference.forwarding.http_forwarder",
        "--config", "/workspace/model-engine/model_engine_server/inference/configs/service--http_forwarder.yaml",
        "--port", "5000", "--num-workers", "2",
        "--set", "forwarder.sync.predict_route=/predict", "--set", "forwarder.stream.predict_route=/stream",
        "--set", "forwarder.sync.healthcheck_route=/health", "--set", "forwarder.stream.healthcheck_route=/health",
        "--set", "forwarder.sync.routes=['/predict', '/v1/chat/completions', '/v1/completions']",
        "--set", "forwarder.stream.routes=['/stream', '/v1/chat/completions', '/v1/completions']",
    ]
    node_selector = dict(cfg.node_selector or {})
    if rec["gpu_type"]:
        node_selector["k8s.amazonaws.com/accelerator"] = rec["gpu_type"]
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": cfg.endpoint_namespace, "labels": labels,
                     "annotations": {"kubernetes.io/change-cause": change_cause}},
        "spec": {
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "replicas": rec["min_workers"],
            "selector": {"matchLabels": {"app": name, "version": "v1"}},
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    "annotations": {
                        "ad.datadoghq.com/main.logs": f'[{{"service": "{rec["name"]}", "source": "python"}}]',
                        "kubernetes.io/change-cause": change_cause,
                        "sidecar.istio.io/holdApplicationUntilProxyStarts": "true",
                    },
                },
                "spec": {
                    "affinity": {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
                        "weight": 1, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                                         "labelSelector": {"matchExpressions": [{
                                                             "key": "app", "operator": "In",
                                                             "values": [name]}]}}}]}},
                    "terminationGracePeriodSeconds": 600,
                    "serviceAccount": "model-engine",
                    "serviceAccountName": "model-engine",
                    "nodeSelector": node_selector,
                    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                    "priorityClassName": ("model-engine-high-priority" if rec["high_priority"]
                                          else "model-engine-default-priority"),
                    "securityContext": {"fsGroup": 65534},
                    "containers": [
                        {
                            "name": "http-forwarder",
                            "image": forwarder_image,
                            "imagePullPolicy": "IfNotPresent",
                            "command": forwarder_cmd,
                            "env": [{"name": "DD_SERVICE", "value": rec["name"]}],
                            "ports": [{"containerPort": 5000, "name": "http", "protocol": "TCP"}],
                            "readinessProbe": {"httpGet": {"path": "/readyz", "port": 5000},
                                               "initialDelaySeconds": 10, "periodSeconds": 5, "timeoutSeconds": 5},
                            "resources": {"requests": {"cpu": "1", "memory": "100M", "ephemeral-storage": "100M"},
                                          "limits": {"cpu": "1", "memory": "2Gi", "ephemeral-storage": "1G"}},
                        },
                        {
                            "name": "main",
                            "image": cfg.vllm_image(bundle.tag),
                            "imagePullPolicy": "IfNotPresent",
                            "command": list(bundle.command),
                            "env": main_env,
                            "envFrom": [{"secretRef": {"name": cfg.s3_credentials_secret}}],
                            "ports": [{"containerPort": 5005, "name": "http", "protocol": "TCP"}],
                            "readinessProbe": {"httpGet": {"path": "/health", "port": 5005},
                                               "initialDelaySeconds": 10, "periodSeconds": 5, "timeoutSeconds": 5},
                            "resources": {"requests": dict(resources), "limits": dict(resources)},
                            "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"},
                                             {"name": "user-config", "mountPath": "/app/user_config",
                                              "subPath": "raw_data"},
                                             {"name": "endpoint-config", "mountPath": "/app/endpoint_config",
                                              "subPath": "raw_data"}],
                        },
                    ],
                    "volumes": [
                        {"name": "dshm", "emptyDir": {"medium": "Memory"}},
                        {"name": "user-config", "configMap": {"name": name}},
                        {"name": "endpoint-config", "configMap": {"name": f"{name}-endpoint-config"}},
                    ],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": cfg.endpoint_namespace, "labels": labels},
        "spec": {"type": "ClusterIP", "selector": {"app": name},
                 "ports": [{"port": 80, "targetPort": 5000, "protocol": "TCP", "name": "http"}]},
    }
    hpa = {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": cfg.endpoint_namespace, "labels": labels},
        "spec": {
            "minReplicas": max(rec["min_workers"], 1), "maxReplicas": max(rec["max_workers"], 1),
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "metrics": [{"type": "Pods", "pods": {"metric": {"name": "request-concurrency-average"},
                                                  "target": {"type": "AverageValue",
                                                             "averageValue": str(rec["per_worker"])}}}],
        },
    }
    user_cm = {"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": name, "namespace": cfg.endpoint_namespace, "labels": labels},
               "data": {"raw_data": "null"}}
    endpoint_cm = {"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": f"{name}-endpoint-config", "namespace": cfg.endpoint_namespace,
                                "labels": labels},
                   "data": {"raw_data": (f"bundle_name: {bundle.name}\nendpoint_id: {rec['id']}\n"
                                         f"endpoint_name: {rec['name']}\npost_inference_hooks: "
                                         f"{rec['post_inference_hooks'] or []}\nuser_id: {rec['owner']}\n")}}
    return {"deployment": deployment, "service": service, "hpa": hpa, "user_cm": user_cm, "endpoint_cm": endpoint_cm}


class EndpointBuilder:
    def __init__(self, engine: ModelEngine, control_plane, queue: asyncio.Queue, pod_log=None):
        self.engine = engine
        self.kube = engine.kube
        self.cfg = engine.config
        self.control_plane = control_plane
        self.queue = queue
        self.task: asyncio.Task | None = None
        self.builds = 0
        self.pod_log = pod_log or (lambda text: None)   # writes into the builder pod's container log

    def _log(self, level: str, text: str) -> None:
        self.pod_log(f"[{now().strftime('%Y-%m-%d %H:%M:%S,%f')[:-3]}: {level}/ForkPoolWorker-1] {text}\n")

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.run(), name="endpoint-builder")

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            try:
                await self.task
            except (asyncio.CancelledError, Exception):
                pass

    async def run(self) -> None:
        deferred: list[dict] = []
        while True:
            if not deferred:
                deferred.append(await self.queue.get())
            # Like a Celery worker: nothing is consumed while no builder pod is available.
            while not self.control_plane.builder_ready():
                await asyncio.sleep(self.cfg.control_plane_poll)
            while not self.queue.empty():
                deferred.append(self.queue.get_nowait())
            still: list[dict] = []
            for task in deferred:
                rec = self.engine.records.get(task["endpoint_id"])
                if rec is None:
                    continue
                if rec.get("creation_task_id") != task["task_id"]:
                    continue  # superseded by a newer update
                if self.engine.faults.get("builder_stalled", rec["name"]) is not None:
                    still.append(task)
                    continue
                async with self.engine.endpoint_lock(rec["id"]):
                    if rec["id"] in self.engine.records and rec.get("creation_task_id") == task["task_id"]:
                        await self.build(rec, task)
            deferred = still
            if deferred:
                await asyncio.sleep(self.cfg.control_plane_poll)

    async def forwarder_image(self) -> tuple[str, str]:
        dep = await self.kube.get("Deployment", BUILDER_DEPLOYMENT, self.cfg.gateway_namespace)
        image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
        tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else "latest"
        return f"{self.cfg.forwarder_repository}:{tag}", tag

    async def build(self, rec: dict, task: dict) -> None:
        ns = self.cfg.endpoint_namespace
        self._log("INFO", f"Task model_engine_server.service_builder.tasks_v1.build_endpoint[{task['task_id']}] "
                          f"received; endpoint_id={rec['id']} endpoint_name={rec['name']}")
        rec["status"] = "UPDATE_IN_PROGRESS"
        rec["last_updated_at"] = now()
        try:
            bundle = self.engine.bundles[rec["bundle_id"]]
            forwarder, me_tag = await self.forwarder_image()
            m = build_manifests(rec, bundle, self.cfg, forwarder, me_tag)
            apply_builder_behaviour(m, me_tag)   # what this builder image does differently (onprem22/23)
            name = m["deployment"]["metadata"]["name"]
            for cm in (m["user_cm"], m["endpoint_cm"]):
                await self.kube.apply("ConfigMap", ns, cm)
            current = await self.kube.get("Deployment", name, ns)
            if current is None:
                await self.kube.create("Deployment", ns, m["deployment"])
            elif task["bundle_changed"]:
                body = copy.deepcopy(m["deployment"])
                body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                body["spec"]["replicas"] = current["spec"].get("replicas", rec["min_workers"])
                await self.kube.replace("Deployment", name, ns, body)
            else:
                body = copy.deepcopy(m["deployment"])
                del body["spec"]["replicas"]  # patched without replicas: the autoscaler keeps control
                await self.kube.patch("Deployment", name, ns, body)
            if await self.kube.get("Service", name, ns) is None:
                await self.kube.create("Service", ns, m["service"])
            await self.kube.apply("HorizontalPodAutoscaler", ns, m["hpa"])
        except Exception as exc:  # builder failure -> UPDATE_FAILED with a user-facing reason
            log.exception("build of %s failed", rec["id"])
            detail = f"{exc.status} {exc.reason}: {exc.body}" if isinstance(exc, ApiException) else repr(exc)
            self._log("ERROR", f"Task build_endpoint[{task['task_id']}] raised unexpected: {detail}")
            if rec.get("creation_task_id") == task["task_id"]:
                rec["status"] = "UPDATE_FAILED"
                # Only intentionally user-facing messages are surfaced upstream; Kubernetes errors are not.
                rec["status_reason"] = "Endpoint deployment failed due to an internal error."
                rec["last_updated_at"] = now()
            return
        if rec.get("creation_task_id") == task["task_id"]:
            rec["status"] = "READY"
            rec["status_reason"] = None
            rec["last_updated_at"] = now()
            rec["metadata"].setdefault(LLM_METADATA_KEY, {})
        self.builds += 1
        self._log("INFO", f"Task build_endpoint[{task['task_id']}] succeeded: endpoint {rec['name']} "
                          f"({rec['id']}) status READY")
        log.info("built %s at %s", rec["id"], iso(now()))
