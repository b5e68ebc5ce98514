"""The endpoint builder: a separate asyncio task consuming build tasks like the Celery service builder.

For every task it writes, in the endpoint namespace and through the Kubernetes HTTP API, what upstream's
``K8SEndpointResourceDelegate._create_or_update_resources`` writes, in its order, all named
``launch-endpoint-id-<id>`` with the chart's service-template labels:

    Deployment (``deployment-runnable-image-streaming-gpu.yaml``), ConfigMaps ``<name>`` and ``<name>-endpoint-config``,
    VerticalPodAutoscaler (``optimize_costs``), PodDisruptionBudget (``nodes_per_worker == 1``),
    HorizontalPodAutoscaler (``min_workers > 0``) *or* KEDA ScaledObject (``min_workers == 0``; the other one is
    deleted first), Service.

``ENDPOINT_OBJECTS`` is that list; ``DELETE_ORDER`` is upstream's ``_delete_resources_sync``.  An optional object is
one entry in each plus its manifest function: the model-cache PersistentVolumeClaim ``<name>-model-cache`` is one
(written first, for an endpoint whose bundle has the cache: ``_llm.model_cache_enabled``, from the service template's
``persistent-volume-claim.yaml``; mounted as volume ``model-cache``; deleted with the endpoint; see ``model_cache.py``).
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass

import yaml
from kubernetes.client.exceptions import ApiException

from . import model_cache
from .image_behaviour import apply_builder_behaviour
from .service import LLM_METADATA_KEY, ModelEngine, iso, now, resource_name

log = logging.getLogger("twin.model_engine.builder")
BUILDER_DEPLOYMENT = "model-engine-endpoint-builder"
AWS_CONFIG_FILE = "/opt/.aws/config"
INFRA_CONFIG_PATH = "/workspace/model-engine/model_engine_server/core/configs"
INFRA_SERVICE_CONFIG_VOLUME_MOUNT_PATH = "/infra-config"     # k8s_resource_types.py


def _q(v) -> str:
    return str(v)


def _yaml_scalar(v):
    """A template value as the YAML load after ``Template.substitute`` types it (``cpu: 4`` -> 4, ``16Gi`` -> str)."""
    return yaml.safe_load(str(v))


@dataclass
class Ctx:
    rec: dict
    bundle: object
    cfg: object
    forwarder_image: str
    tag: str                 # the model-engine tag (GIT_TAG)
    name: str
    labels: dict
    cache_template: str | None = None    # the service template's persistent-volume-claim.yaml, if the chart has it

    @property
    def cache(self) -> model_cache.CacheSettings | None:
        return getattr(self.bundle, "model_cache", None)

    def meta(self, suffix: str = "", namespace: bool = True) -> dict:
        m = {"name": self.name + suffix, "labels": dict(self.labels)}
        if namespace:
            m["namespace"] = self.cfg.endpoint_namespace
        return m


def template_labels(rec: dict, cfg, tag: str) -> dict:
    """``modelEngine.serviceTemplateLabels`` (facts §5)."""
    return {
        **rec["labels"],   # user labels (team, product, and any extra ones merged by updates)
        "user_id": rec["owner"], "team": rec["labels"]["team"], "product": rec["labels"]["product"],
        "created_by": rec["created_by"], "owner": rec["owner"], "env": cfg.context, "managed-by": "model-engine",
        "use_scale_launch_endpoint_network_policy": "true", "tags.datadoghq.com/env": cfg.context,
        "tags.datadoghq.com/version": tag, "tags.datadoghq.com/service": rec["name"], "endpoint_id": rec["id"],
        "endpoint_name": rec["name"],
    }


# ---- the pod: env, mounts, volumes (on-prem values: the `aws` block on, config.values set, mountInfraConfig) ----------
def forwarder_env(c: Ctx) -> list:
    """``modelEngine.syncForwarderTemplateEnv`` (+ S3_ENDPOINT_URL from ``s3EndpointUrl``)."""
    cfg = c.cfg
    env = [{"name": "DD_TRACE_ENABLED", "value": str(cfg.dd_trace_enabled)},
           {"name": "DD_REMOTE_CONFIGURATION_ENABLED", "value": "false"},
           {"name": "DD_SERVICE", "value": c.rec["name"]}, {"name": "DD_ENV", "value": cfg.context},
           {"name": "DD_VERSION", "value": c.tag},
           {"name": "DD_AGENT_HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}}]
    if cfg.aws_config_map_name:
        env += [{"name": "AWS_PROFILE", "value": cfg.aws_profile}, {"name": "AWS_CONFIG_FILE", "value": AWS_CONFIG_FILE}]
    env += [{"name": "RESULTS_S3_BUCKET", "value": cfg.s3_bucket}, {"name": "BASE_PATH", "value": "/workspace"},
            {"name": "ML_INFRA_SERVICES_CONFIG_PATH", "value": f"{INFRA_CONFIG_PATH}/config.yaml"}]
    if cfg.s3_endpoint_url:
        env.append({"name": "S3_ENDPOINT_URL", "value": cfg.s3_endpoint_url})
    return env


def main_env(c: Ctx) -> list:
    """MAIN_ENV (bundle env, AWS_PROFILE, AWS_CONFIG_FILE, S3_ENDPOINT_URL) + ``add_datadog_env_to_container``."""
    cfg = c.cfg
    env = [{"name": k, "value": v} for k, v in (c.bundle.env or {}).items()]
    env += [{"name": "AWS_PROFILE", "value": cfg.aws_profile}, {"name": "AWS_CONFIG_FILE", "value": AWS_CONFIG_FILE}]
    if cfg.s3_endpoint_url:
        env.append({"name": "S3_ENDPOINT_URL", "value": cfg.s3_endpoint_url})
    env += [{"name": "DD_TRACE_ENABLED", "value": "true"}, {"name": "DD_SERVICE", "value": c.rec["name"]},
            {"name": "DD_ENV", "value": cfg.context}, {"name": "DD_VERSION", "value": c.tag},
            {"name": "DD_AGENT_HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
            {"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]
    return env


def _aws_mount(cfg) -> list:
    return [{"name": "config-volume", "mountPath": AWS_CONFIG_FILE, "subPath": "config"}] if cfg.aws_config_map_name else []


def forwarder_mounts(c: Ctx) -> list:
    """``modelEngine.forwarderVolumeMounts``."""
    return [*_aws_mount(c.cfg),
            {"name": "user-config", "mountPath": "/workspace/user_config", "subPath": "raw_data"},
            {"name": "endpoint-config", "mountPath": "/workspace/endpoint_config", "subPath": "raw_data"},
            {"name": "infra-service-config-volume", "mountPath": INFRA_CONFIG_PATH}]


def main_mounts(c: Ctx) -> list:
    infra = [{"name": "infra-service-config-volume", "mountPath": INFRA_SERVICE_CONFIG_VOLUME_MOUNT_PATH}] \
        if c.cfg.mount_infra_config else []
    cache = [{"name": model_cache.VOLUME, "mountPath": c.cache.mount_path}] if c.cache else []
    return [*_aws_mount(c.cfg), {"mountPath": "/dev/shm", "name": "dshm"}, *infra,
            {"name": "user-config", "mountPath": "/app/user_config", "subPath": "raw_data"},
            {"name": "endpoint-config", "mountPath": "/app/endpoint_config", "subPath": "raw_data"}, *cache]


def pod_volumes(c: Ctx) -> list:
    aws = [{"name": "config-volume", "configMap": {"name": c.cfg.aws_config_map_name}}] if c.cfg.aws_config_map_name else []
    return [*aws,
            {"name": "user-config", "configMap": {"name": c.name}},
            {"name": "endpoint-config", "configMap": {"name": f"{c.name}-endpoint-config"}},
            {"name": "dshm", "emptyDir": {"medium": "Memory"}},
            {"name": "infra-service-config-volume", "configMap": {
                "name": c.cfg.service_config_map, "items": [{"key": "infra_service_config", "path": "config.yaml"}]}},
            *([{"name": model_cache.VOLUME, "persistentVolumeClaim": {"claimName": f"{c.name}-model-cache"}}] if c.cache else [])]


FORWARDER_CMD = [
    "/usr/bin/dumb-init", "--", "ddtrace-run", "python", "-m", "model_engine_server.inference.forwarding.http_forwarder",
    "--config", "/workspace/model-engine/model_engine_server/inference/configs/service--http_forwarder.yaml",
    "--port", "5000", "--num-workers", "2",
    "--set", "forwarder.sync.predict_route=/predict", "--set", "forwarder.stream.predict_route=/stream",
    "--set", "forwarder.sync.healthcheck_route=/health", "--set", "forwarder.stream.healthcheck_route=/health",
    "--set", "forwarder.sync.routes=['/predict', '/v1/chat/completions', '/v1/completions']",
    "--set", "forwarder.stream.routes=['/stream', '/v1/chat/completions', '/v1/completions']",
]


def containers(c: Ctx) -> list:
    rec, cfg = c.rec, c.cfg
    resources = {"cpu": _q(rec["cpus"]), "memory": _q(rec["memory"]), "ephemeral-storage": _q(rec["storage"])}
    if rec["gpus"]:
        resources["nvidia.com/gpu"] = _q(rec["gpus"])
    forwarder = {
        "name": "http-forwarder", "image": c.forwarder_image, "imagePullPolicy": "IfNotPresent",
        "command": list(FORWARDER_CMD), "env": forwarder_env(c),
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": 5000},
                           "initialDelaySeconds": 10, "periodSeconds": 5, "timeoutSeconds": 5},
        "resources": {"requests": {"cpu": "1", "memory": "100M", "ephemeral-storage": "100M"},
                      "limits": {"cpu": "1", "memory": "2Gi", "ephemeral-storage": "1G"}},
        "volumeMounts": forwarder_mounts(c),
        "ports": [{"containerPort": 5000, "name": "http", "protocol": "TCP"}],
    }
    main = {"name": "main"}
    if cfg.main_security_context:
        main["securityContext"] = copy.deepcopy(cfg.main_security_context)
    main.update({
        "image": cfg.vllm_image(c.bundle.tag), "imagePullPolicy": "IfNotPresent", "command": list(c.bundle.command),
        "env": main_env(c), "envFrom": [{"secretRef": {"name": cfg.s3_credentials_secret}}],
        "readinessProbe": {"httpGet": {"path": "/health", "port": 5005},
                           "initialDelaySeconds": 10, "periodSeconds": 5, "timeoutSeconds": 5},
        "resources": {"requests": dict(resources), "limits": dict(resources)},
        "volumeMounts": main_mounts(c),
        "ports": [{"containerPort": 5005, "name": "http", "protocol": "TCP"}],
    })
    return [forwarder, main]


# ---- the objects ----------------------------------------------------------------------------------------------------
def deployment(c: Ctx) -> dict:
    rec, cfg, name = c.rec, c.cfg, c.name
    change_cause = (f"Deployment at {now().strftime('%Y-%m-%d %H:%M:%S.%f')} UTC. Using deployment constructed from "
                    f"model bundle ID {c.bundle.id}, model bundle name {c.bundle.name}, endpoint ID {rec['id']}")
    node_selector = dict(cfg.node_selector or {})
    if rec["gpu_type"]:
        node_selector["k8s.amazonaws.com/accelerator"] = rec["gpu_type"]
    meta = c.meta()
    meta["annotations"] = {"kubernetes.io/change-cause": change_cause}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": {
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        "replicas": rec["min_workers"],
        "selector": {"matchLabels": {"app": name, "version": "v1"}},
        "template": {
            "metadata": {"labels": dict(c.labels, app=name, version="v1"), "annotations": {
                "ad.datadoghq.com/main.logs": f'[{{"service": "{rec["name"]}", "source": "python"}}]',
                "kubernetes.io/change-cause": change_cause,
                "sidecar.istio.io/holdApplicationUntilProxyStarts": "true"}},
            "spec": {
                "affinity": {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
                    "weight": 1, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname", "labelSelector": {
                        "matchExpressions": [{"key": "app", "operator": "In", "values": [name]}]}}}]}},
                "terminationGracePeriodSeconds": 600,
                "serviceAccount": "model-engine", "serviceAccountName": "model-engine",
                "nodeSelector": node_selector,
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                "priorityClassName": "model-engine-high-priority" if rec["high_priority"] else "model-engine-default-priority",
                "containers": containers(c),
                "securityContext": {"fsGroup": 65534},
                "volumes": pod_volumes(c),
            }}}}


def user_config_map(c: Ctx) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": c.meta(), "data": {"raw_data": "null"}}


def endpoint_config_map(c: Ctx) -> dict:
    rec = c.rec
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": c.meta("-endpoint-config"),
            "data": {"raw_data": (f"bundle_name: {c.bundle.name}\nendpoint_id: {rec['id']}\n"
                                  f"endpoint_name: {rec['name']}\npost_inference_hooks: "
                                  f"{rec['post_inference_hooks'] or []}\nuser_id: {rec['owner']}\n")}}


def vertical_pod_autoscaler(c: Ctx) -> dict:
    """``vertical-pod-autoscaler.yaml`` (its metadata has no namespace: the API call sets it)."""
    return {"apiVersion": "autoscaling.k8s.io/v1", "kind": "VerticalPodAutoscaler", "metadata": c.meta(namespace=False),
            "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": c.name},
                     "updatePolicy": {"updateMode": "Auto"},
                     "resourcePolicy": {"containerPolicies": [
                         {"containerName": "istio-proxy", "mode": "Off"},
                         {"containerName": "main", "minAllowed": {"cpu": "100m", "memory": "128Mi"},
                          "maxAllowed": {"cpu": _yaml_scalar(c.rec["cpus"]), "memory": _yaml_scalar(c.rec["memory"])},
                          "controlledResources": ["cpu", "memory"]}]}}}


def pod_disruption_budget(c: Ctx) -> dict:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": c.meta(),
            "spec": {"maxUnavailable": "50%", "selector": {"matchLabels": {"app": c.name}}}}


def horizontal_pod_autoscaler(c: Ctx) -> dict:
    rec = c.rec
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": c.meta(), "spec": {
        "minReplicas": max(rec["min_workers"], 1), "maxReplicas": max(rec["max_workers"], 1),
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": c.name},
        "metrics": [{"type": "Pods", "pods": {"metric": {"name": "request-concurrency-average"},
                                              "target": {"type": "AverageValue", "averageValue": str(rec["per_worker"])}}}]}}


def keda_scaled_object(c: Ctx) -> dict:
    """``keda-scaled-object.yaml`` with the redis trigger (not Azure)."""
    rec = c.rec
    url = c.cfg.cache_redis_url.split("://", 1)[-1]
    host_port, _, db = url.partition("/")
    return {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": c.meta(), "spec": {
        "scaleTargetRef": {"name": c.name}, "pollingInterval": 5, "cooldownPeriod": 300,
        "minReplicaCount": rec["min_workers"], "maxReplicaCount": rec["max_workers"],
        "fallback": {"failureThreshold": 3, "replicas": rec["min_workers"]},
        "triggers": [{"type": "redis", "metadata": {
            "address": host_port, "passwordFromEnv": "", "listName": f"launch-endpoint-autoscaling:{rec['id']}",
            "listLength": "100", "activationListLength": "0", "enableTLS": "false", "unsafeSsl": "false",
            "databaseIndex": db or "0"}}]}}


def service(c: Ctx) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": c.meta(), "spec": {
        "type": "ClusterIP", "selector": {"app": c.name},
        "ports": [{"port": 80, "targetPort": 5000, "protocol": "TCP", "name": "http"}]}}


class BuildError(Exception):
    """A build that cannot be written (logged by the builder, the endpoint becomes UPDATE_FAILED)."""


def model_cache_claim(c: Ctx) -> dict:
    """The claim of ``persistent-volume-claim.yaml``; a chart without that template fails the build (facts §7)."""
    if not c.cache_template:
        raise BuildError(f"the service template ConfigMap {model_cache.TEMPLATE_CONFIG_MAP} has no "
                         f"{model_cache.PVC_TEMPLATE_KEY}: the model cache is on but the chart cannot render its claim")
    return model_cache.pvc_manifest(c.cache_template, c.name, c.cfg.endpoint_namespace, c.labels)


def _cache_enabled(rec: dict) -> bool:
    return bool(((rec.get("metadata") or {}).get(LLM_METADATA_KEY) or {}).get("model_cache_enabled"))


def _sync_like(rec: dict) -> bool:
    return rec["endpoint_type"] in ("sync", "streaming") and rec["nodes_per_worker"] == 1


@dataclass(frozen=True)
class EndpointObject:
    key: str
    kind: str
    build: Callable[[Ctx], dict]
    wanted: Callable[[dict], bool] = lambda rec: True
    # how a create that answers 409 updates it: "patch" (strategic merge), "merge_replace" (get, deep-merge, replace:
    # upstream's custom objects), "deployment" (replace on a new bundle, else patch without replicas), "keep" (leave the
    # existing one: a claim's spec is immutable)
    update: str = "patch"
    replaces: str | None = None      # deleted (404 tolerated) before this one is written: exactly one autoscaler


ENDPOINT_OBJECTS = [
    EndpointObject("model_cache_pvc", "PersistentVolumeClaim", model_cache_claim, _cache_enabled, update="keep"),
    EndpointObject("deployment", "Deployment", deployment, update="deployment"),
    EndpointObject("user_cm", "ConfigMap", user_config_map),
    EndpointObject("endpoint_cm", "ConfigMap", endpoint_config_map),
    EndpointObject("vpa", "VerticalPodAutoscaler", vertical_pod_autoscaler, lambda r: bool(r["optimize_costs"]),
                   update="merge_replace"),
    EndpointObject("pdb", "PodDisruptionBudget", pod_disruption_budget, lambda r: r["nodes_per_worker"] == 1),
    EndpointObject("hpa", "HorizontalPodAutoscaler", horizontal_pod_autoscaler,
                   lambda r: _sync_like(r) and r["min_workers"] > 0, replaces="ScaledObject"),
    EndpointObject("keda", "ScaledObject", keda_scaled_object, lambda r: _sync_like(r) and r["min_workers"] == 0,
                   update="merge_replace", replaces="HorizontalPodAutoscaler"),
    EndpointObject("service", "Service", service, _sync_like),
]

# upstream ``_delete_resources_sync``: (kind, how); ConfigMaps are found by the endpoint_id label.  ``counted``: a
# failure of this delete fails the API's DELETE (VPA and PDB results are ignored upstream).
DELETE_ORDER = [("LeaderWorkerSet", True), ("Deployment", True), ("PersistentVolumeClaim", False), ("ConfigMap", True),
                ("Service", True),
                ("HorizontalPodAutoscaler", True), ("ScaledObject", True), ("VerticalPodAutoscaler", False),
                ("PodDisruptionBudget", False), ("DestinationRule", True), ("VirtualService", True)]


def build_manifests(rec: dict, bundle, cfg, forwarder_image: str, model_engine_tag: str, cache_template: str | None = None) -> dict:
    """key -> manifest of every object the endpoint wants now (see ENDPOINT_OBJECTS)."""
    c = Ctx(rec, bundle, cfg, forwarder_image, model_engine_tag, resource_name(rec["id"]),
            template_labels(rec, cfg, model_engine_tag), cache_template)
    return {o.key: o.build(c) for o in ENDPOINT_OBJECTS if o.wanted(rec)}


def emptydir_fallback(manifests: dict) -> bool:
    """The on-prem async bug: the claim is never written and the pod gets an EmptyDir as its model cache volume."""
    if manifests.pop("model_cache_pvc", None) is None:
        return False
    for vol in manifests["deployment"]["spec"]["template"]["spec"]["volumes"]:
        if vol["name"] == model_cache.VOLUME:
            vol.pop("persistentVolumeClaim", None)
            vol["emptyDir"] = {}
    return True


def deep_update(base: dict, new: dict) -> dict:
    """pydantic's ``deep_update``: nested dicts merged, everything else replaced."""
    out = copy.deepcopy(base)
    for k, v in new.items():
        out[k] = deep_update(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


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

    async def cache_template(self) -> str | None:
        """``persistent-volume-claim.yaml`` of the chart's service template ConfigMap (mounted into the builder)."""
        cm = await self.kube.get("ConfigMap", model_cache.TEMPLATE_CONFIG_MAP, self.cfg.gateway_namespace)
        return ((cm or {}).get("data") or {}).get(model_cache.PVC_TEMPLATE_KEY)

    async def _write(self, obj: EndpointObject, body: dict, bundle_changed: bool) -> None:
        """Create; on 409 update it the way upstream's ``_create_<kind>`` does."""
        ns, name = self.cfg.endpoint_namespace, body["metadata"]["name"]
        if obj.replaces:
            await self.kube.delete(obj.replaces, name, ns)
        try:
            await self.kube.create(obj.kind, ns, body)
            return
        except ApiException as exc:
            if exc.status != 409 and not (obj.kind == "Service" and exc.status == 422):
                raise
        if obj.update == "keep":
            return
        if obj.update == "merge_replace":
            current = await self.kube.get(obj.kind, name, ns)
            await self.kube.replace(obj.kind, name, ns, deep_update(current, body))
        elif obj.update == "deployment":
            await self._update_deployment(name, ns, body, bundle_changed)
        else:
            await self.kube.patch(obj.kind, name, ns, body)

    async def _update_deployment(self, name: str, ns: str, body: dict, bundle_changed: bool) -> None:
        """``_create_deployment``: a changed bundle replaces it (replicas back to min_workers); otherwise it is patched
        without ``replicas`` so the autoscaler keeps control, and replaced when the patch answers 409/422."""
        body = copy.deepcopy(body)
        if bundle_changed:
            await self.kube.replace("Deployment", name, ns, body)
            return
        del body["spec"]["replicas"]
        try:
            await self.kube.patch("Deployment", name, ns, body)
        except ApiException as exc:
            if exc.status not in (409, 422):
                raise
            await self.kube.replace("Deployment", name, ns, body)

    async def build(self, rec: dict, task: dict) -> None:
        self._log("INFO", f"Task model_engine_server.service_builder.tasks_v1.build_endpoint[{task['task_id']}] "
                          f"received; endpoint_id={rec['id']} endpoint_name={rec['name']}")
        rec["status"] = "UPDATE_IN_PROGRESS"
        rec["last_updated_at"] = now()
        try:
            bundle = self.engine.bundles[rec["bundle_id"]]
            forwarder, me_tag = await self.forwarder_image()
            manifests = build_manifests(rec, bundle, self.cfg, forwarder, me_tag, await self.cache_template())
            apply_builder_behaviour(manifests, me_tag)   # what this builder image does differently (onprem22/23)
            if self.engine.faults.get("model_cache_async_bug", rec["name"]) is not None and emptydir_fallback(manifests):
                self.pod_log(model_cache.ASYNC_BUG_WARNING + "\n  hardware = _get_recommended_hardware_config_map()\n"
                             "RuntimeWarning: Enable tracemalloc to get the object allocation traceback\n")
            for obj in ENDPOINT_OBJECTS:
                if obj.key in manifests:
                    await self._write(obj, manifests[obj.key], task["bundle_changed"])
        except Exception as exc:  # builder failure -> UPDATE_FAILED with a user-facing reason
            log.exception("build of %s failed", rec["id"])
            detail = f"{exc.status} {exc.reason}: {exc.body}" if isinstance(exc, ApiException) else \
                (str(exc) if isinstance(exc, BuildError) else repr(exc))
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
