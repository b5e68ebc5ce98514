"""The whole twin in one process: Kubernetes emulator + S3 + model-engine API + builder + pod simulator.

``Twin(state_dir).start()`` runs everything on an asyncio loop in a background thread (pytest/molecule);
``python -m tests.twin up`` runs the same thing in the foreground (see ``tests/twin/__main__.py``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

from tests.twin.k8s.auth import ADMIN_TOKEN, READONLY_CONTEXT, READONLY_TOKEN

from . import model_cache
from .api import ModelEngineAPI, k8s_service_proxy
from .builder import EndpointBuilder
from .config import LATEST_TAGS, MODEL_ENGINE_IMAGE, RECOMMENDED_HARDWARE, ServiceConfig
from .faults import Faults
from .kube import Kube
from .podsim import ControlPlaneRuntime, EndpointPodRuntime
from .registry import PULL_PASSWORD, PULL_SECRET_NAME, PULL_USER, TOKEN_SERVICE, Registry, RegistryServer, pull_secret
from .s3 import S3Server
from .seed import DEFAULT_BUCKET, SeedConfig, seed
from .service import HARDWARE_CM, LATEST_CM, ModelEngine

log = logging.getLogger("twin")
GPU_NODE = "hpc-k8s-phy-wrk-g01"
CPU_NODE = "hpc-k8s-phy-wrk-c01"
DEFAULT_USER = "test-user-id"


# The cluster's storage (a Ceph cluster with both CSI drivers, and a node-local provisioner): (class, provisioner, default,
# volumeBindingMode). A test adds others with ``twin.emulator.add_storage_class`` / ``add_provisioner``.
DEFAULT_STORAGE_CLASSES = [("ceph-rbd", "rbd.csi.ceph.com", True, "Immediate"),
                           ("cephfs", "cephfs.csi.ceph.com", False, "Immediate"),
                           ("local-path", "rancher.io/local-path", False, "WaitForFirstConsumer")]


def default_nodes() -> list[dict]:
    return [
        {"name": GPU_NODE,
         "labels": {"k8s.amazonaws.com/accelerator": "nvidia-tesla-t4", "node-lifecycle": "normal",
                    "kubernetes.io/hostname": GPU_NODE, "nvidia.com/gpu.present": "true"},
         "allocatable": {"nvidia.com/gpu": "2", "ephemeral-storage": "189Gi", "cpu": "32", "memory": "128Gi",
                         "pods": "110"},
         "taints": []},
        {"name": CPU_NODE,
         "labels": {"node-lifecycle": "normal", "kubernetes.io/hostname": CPU_NODE},
         "allocatable": {"ephemeral-storage": "100Gi", "cpu": "16", "memory": "64Gi", "pods": "110"},
         "taints": []},
    ]


@dataclass
class TwinOptions:
    s3: str = "moto"
    registry_auth: str = "token"      # "token" (Bearer flow, like Harbor), "htpasswd" (basic) or "none"
    nodes: list = field(default_factory=default_nodes)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    seed: SeedConfig = field(default_factory=SeedConfig)
    bucket: str = DEFAULT_BUCKET
    api_port: int = 0
    k8s_port: int = 0
    # Also write twin.yml here (the repo's inventories/local for the default state dir, so that
    # `ansible-playbook -i inventories/local ...` finds the running twin without extra arguments).
    inventory_dir: Path | None = None


class Twin:
    def __init__(self, state_dir, options: TwinOptions | None = None):
        self.state_dir = Path(state_dir).resolve()
        self.options = options or TwinOptions()
        self.config = self.options.service
        self.registry = Registry()
        self.faults = Faults()
        self.s3: S3Server | None = None
        self.registry_server: RegistryServer | None = None
        self.emulator = None
        self.pod_runtime = None
        self.kube: Kube | None = None
        self.engine: ModelEngine | None = None
        self.builder: EndpointBuilder | None = None
        self.api_runner: web.AppRunner | None = None
        self.api: ModelEngineAPI | None = None
        self.api_url: str | None = None   # the gateway API; also behind the model-engine Service (port 80 -> 5000)
        self.manifest: dict = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._session: aiohttp.ClientSession | None = None
        self._cp_task: asyncio.Task | None = None
        self._gateway = (False, "model-engine gateway has no available replica")
        self._builder_ready = False

    # ---- what clients sent --------------------------------------------------------------------------------------
    def client_requests(self) -> dict:
        """Every request a client (not the twin itself) sent so far, per service, oldest first: ``gateway`` (time,
        method, path, status, user), ``kubernetes`` (time, method, path, status), ``s3`` (method, URL; None with
        SeaweedFS). A test keeps the lengths before a run and reads what the run added."""
        return {"gateway": list(self.api.request_log), "kubernetes": list(self.emulator.api.request_log),
                "s3": self.s3.client_requests()}

    # ---- control plane readiness -----------------------------------------------------------------------------
    def gateway_ready(self):
        return self._gateway

    def builder_ready(self) -> bool:
        return self._builder_ready

    async def _ready_pod_with_good_image(self, app: str) -> bool:
        pods = await self.kube.list_pods(self.config.gateway_namespace, f"app={app}")
        for p in pods:
            conds = {c["type"]: c["status"] for c in (p.get("status") or {}).get("conditions") or []}
            image = p["spec"]["containers"][0]["image"]
            # Ready means the kubelet pulled the image; a tag deleted later does not stop a running pod.
            if (conds.get("Ready") == "True" and not self.registry.is_broken(image)
                    and not (p.get("metadata") or {}).get("deletionTimestamp")):
                return True
        return False

    async def _watch_control_plane(self) -> None:
        while True:
            try:
                gw = await self._ready_pod_with_good_image("model-engine")
                self._gateway = (True, "OK") if gw else (
                    False, "model-engine gateway has no available replica running a known-good image")
                self._builder_ready = await self._ready_pod_with_good_image("model-engine-endpoint-builder")
            except Exception:  # the API keeps answering while the cluster is briefly unreachable
                log.exception("control-plane watch failed")
            await asyncio.sleep(self.config.control_plane_poll)

    # ---- S3 credentials --------------------------------------------------------------------------------------
    def s3_accepted(self, key, secret) -> bool:
        return key == self.s3.access_key and secret == self.s3.secret_key

    # ---- async lifecycle -------------------------------------------------------------------------------------
    async def astart(self) -> None:
        try:
            from tests.twin.k8s import Emulator
        except ImportError:
            from tests.twin.k8s.emulator import Emulator

        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.s3 = S3Server(self.state_dir / "s3", kind=self.options.s3)
        await asyncio.to_thread(self.s3.start)
        self.config.s3_endpoint_url = self.s3.endpoint_url
        self.manifest = await asyncio.to_thread(seed, self.s3.client(), self.options.bucket, self.options.seed)
        await asyncio.to_thread(self.s3.start_recording)   # after the seed: client_requests counts clients only
        (self.state_dir / "s3-manifest.json").write_text(json.dumps(self.manifest, indent=1, sort_keys=True))
        self.registry_server = RegistryServer(self.state_dir / "registry", auth=self.options.registry_auth)
        await asyncio.to_thread(self.registry_server.start)
        await asyncio.to_thread(self.registry.attach, self.registry_server)

        self.emulator = Emulator(self.state_dir / "k8s", host="127.0.0.1", port=self.options.k8s_port,
                                 nodes=list(self.options.nodes))
        self.emulator.image_exists = self.registry.exists
        await self.emulator.start()
        from tests.twin.k8s.storage import ceph_rbd, cephfs, local_path

        for prov in (ceph_rbd(), cephfs(), local_path()):
            self.emulator.add_provisioner(prov)
        for name, prov, default, mode in DEFAULT_STORAGE_CLASSES:
            self.emulator.add_storage_class(name, prov, default=default, binding_mode=mode)
        self.kube = Kube(self.emulator.kubeconfig_path)
        self.control_plane_runtime = ControlPlaneRuntime(self.registry, self.config)
        self.emulator.register_runtime(self.control_plane_runtime)
        self.pod_runtime = EndpointPodRuntime(config=self.config, faults=self.faults, kube=self.kube,
                                              s3_accepted=self.s3_accepted, registry=self.registry)
        self.emulator.register_runtime(self.pod_runtime)
        await self.bootstrap()

        queue: asyncio.Queue = asyncio.Queue()
        self._session = aiohttp.ClientSession()
        self.engine = ModelEngine(config=self.config, kube=self.kube, s3_factory=self.s3.client,
                                  registry=self.registry, faults=self.faults, build_queue=queue)
        proxy = await k8s_service_proxy(self.kube, self.config.endpoint_namespace, lambda: self._session)
        api = self.api = ModelEngineAPI(self.engine, self.faults, self, proxy)
        self.api_runner = web.AppRunner(api.app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await self.api_runner.setup()
        site = web.TCPSite(self.api_runner, "127.0.0.1", self.options.api_port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.api_url = f"http://127.0.0.1:{port}"
        self.control_plane_runtime.gateway_address = ("127.0.0.1", port)
        self._cp_task = asyncio.get_running_loop().create_task(self._watch_control_plane())
        self.builder = EndpointBuilder(self.engine, self, queue, pod_log=lambda text: self.control_plane_runtime.log(
            "model-engine-endpoint-builder", text))
        self.builder.start()
        await self.wait_control_plane(timeout=30)
        self.write_state_files()

    async def wait_control_plane(self, timeout: float = 30) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self._gateway[0] and self._builder_ready:
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"control plane not ready: gateway={self._gateway} builder={self._builder_ready}")

    async def bootstrap(self) -> None:
        """Create what the model-engine Helm release would have created in the cluster."""
        ns = self.config.gateway_namespace
        k = self.kube
        await k.ensure_namespace(ns)
        if self.config.endpoint_namespace != ns:
            await k.ensure_namespace(self.config.endpoint_namespace)
        labels = {"app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/instance": "model-engine",
                  "helm.sh/chart": "model-engine-0.2.7"}
        # Helm's ownership marks: `helm upgrade --install model-engine` of the chart stand-in
        # (tests/twin/charts/model-engine) adopts these objects, as on a cluster the chart installed.
        helm_owned = {"meta.helm.sh/release-name": "model-engine", "meta.helm.sh/release-namespace": ns}
        await self.chart_config_maps()
        await k.apply("ConfigMap", ns, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": LATEST_CM, "namespace": ns, "labels": labels}, "data": dict(LATEST_TAGS)})
        await k.apply("ConfigMap", ns, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": HARDWARE_CM, "namespace": ns, "labels": labels, "annotations": helm_owned},
            "data": dict(RECOMMENDED_HARDWARE)})
        for target in {ns, self.config.endpoint_namespace}:
            await k.apply("ServiceAccount", target, {"apiVersion": "v1", "kind": "ServiceAccount",
                                                     "metadata": {"name": "model-engine", "namespace": target,
                                                                  "labels": labels}})
            secret = {
                "AWS_ACCESS_KEY_ID": self.s3.access_key, "AWS_SECRET_ACCESS_KEY": self.s3.secret_key,
                "AWS_ENDPOINT_URL": self.s3.endpoint_url, "AWS_REGION": self.s3.region,
                "AWS_EC2_METADATA_DISABLED": "true"}
            await k.apply("Secret", target, {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {
                "name": self.config.s3_credentials_secret, "namespace": target, "labels": labels},
                "data": {kk: base64.b64encode(v.encode()).decode() for kk, v in secret.items()}})
            await k.apply("Secret", target, pull_secret(target))   # the cluster's registry pull credentials
        for app, cmd, port in (("model-engine", ["python", "-m", "model_engine_server.entrypoints."
                                                 "start_fastapi_server", "--port", "5000", "--num-workers", "4"], 5000),
                               ("model-engine-endpoint-builder", ["celery", "--app=model_engine_server.service_builder",
                                                                  "worker", "--loglevel=INFO", "--concurrency=2",
                                                                  "--queues=model-engine-service-builder"], None)):
            container = {"name": app, "image": MODEL_ENGINE_IMAGE, "imagePullPolicy": "IfNotPresent",
                         "command": cmd, "env": [{"name": "GIT_TAG", "value": MODEL_ENGINE_IMAGE.rsplit(":", 1)[1]},
                                                 {"name": "S3_ENDPOINT_URL", "value": self.s3.endpoint_url}],
                         "envFrom": [{"secretRef": {"name": self.config.s3_credentials_secret}}],
                         "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}
            if port:
                container["ports"] = [{"containerPort": port, "name": "http"}]
                container["readinessProbe"] = {"httpGet": {"path": "/readyz", "port": port}, "periodSeconds": 2}
            else:
                container["readinessProbe"] = {"exec": {"command": ["cat", "/tmp/readyz"]}}
            await k.apply("Deployment", ns, {
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": app, "namespace": ns, "labels": dict(labels, app=app), "annotations": helm_owned},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": app}},
                         "template": {"metadata": {"labels": {"app": app}},
                                      "spec": {"serviceAccountName": "model-engine",
                                               "nodeSelector": dict(self.config.node_selector or {}),
                                               "containers": [container]}}}})
        await k.apply("Service", ns, {"apiVersion": "v1", "kind": "Service", "metadata": {
            "name": "model-engine", "namespace": ns, "labels": dict(labels, app="model-engine"), "annotations": helm_owned},
            "spec": {"type": "ClusterIP", "selector": {"app": "model-engine"},
                     "ports": [{"port": 80, "targetPort": "http", "protocol": "TCP", "name": "http"}]}})

    async def apply_model_cache(self, values: dict | None = None) -> None:
        """What ``helm upgrade`` with ``modelCache`` values does to the twin's control plane (the chart stand-in renders
        the same): ``MODEL_CACHE_ENABLED``/``MODEL_CACHE_MOUNT_PATH``/``MODEL_CACHE_LOCK_STALE_SECONDS`` on the gateway and
        the builder (a rollout) and ``persistent-volume-claim.yaml`` in the service template ConfigMap. ``None`` or
        ``{"enabled": False}`` turns it off. ``values`` use the chart's names (storage, storageClassName, accessMode,
        mountPath, lockStaleSeconds)."""
        v = {"enabled": False, "storage": "100Gi", "storageClassName": "", "accessMode": "ReadWriteMany",
             "mountPath": model_cache.DEFAULT_MOUNT_PATH, "lockStaleSeconds": model_cache.DEFAULT_LOCK_STALE_SECONDS,
             **(values or {})}
        ns = self.config.gateway_namespace
        cache_env = [{"name": model_cache.ENV_ENABLED, "value": "true"},
                     {"name": model_cache.ENV_MOUNT_PATH, "value": str(v["mountPath"])},
                     {"name": model_cache.ENV_LOCK_STALE, "value": str(v["lockStaleSeconds"])}] if v["enabled"] else []
        names = {e["name"] for e in cache_env} | {model_cache.ENV_ENABLED, model_cache.ENV_MOUNT_PATH, model_cache.ENV_LOCK_STALE}
        for app in ("model-engine", "model-engine-endpoint-builder"):
            if await self._set_env(ns, app, names, cache_env):
                await self._rolled_out(ns, app)   # as `helm upgrade --wait`: the old pods are gone
        data = {model_cache.PVC_TEMPLATE_KEY: model_cache.render_template(v)} if v["enabled"] else {}
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": model_cache.TEMPLATE_CONFIG_MAP, "namespace": ns,
            "annotations": {"helm.sh/hook": "pre-install,pre-upgrade", "helm.sh/hook-weight": "-2"}}, "data": data}
        await self.kube.delete("ConfigMap", model_cache.TEMPLATE_CONFIG_MAP, ns)
        await self.kube.create("ConfigMap", ns, cm)

    async def _set_env(self, ns: str, app: str, names: set, env_add: list) -> bool:
        """Replace the Deployment's env entries ``names`` with ``env_add``; re-read on a 409 (the controllers write
        its status meanwhile). Whether it changed."""
        from kubernetes.client.exceptions import ApiException

        for _attempt in range(10):
            dep = await self.kube.get("Deployment", app, ns)
            container = dep["spec"]["template"]["spec"]["containers"][0]
            env = [e for e in container.get("env") or [] if e["name"] not in names] + env_add
            if env == (container.get("env") or []):
                return False
            container["env"] = env
            try:
                await self.kube.replace("Deployment", app, ns, dep)
                return True
            except ApiException as exc:
                if exc.status != 409:
                    raise
        raise RuntimeError(f"Deployment {ns}/{app}: 10 conflicts in a row")

    async def _rolled_out(self, ns: str, app: str, timeout: float = 60) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            dep = await self.kube.get("Deployment", app, ns)
            st, want = dep.get("status") or {}, (dep.get("spec") or {}).get("replicas", 1)
            if (st.get("observedGeneration") or 0) >= dep["metadata"]["generation"] and \
                    st.get("updatedReplicas") == st.get("replicas") == st.get("availableReplicas") == want:
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"Deployment {ns}/{app} did not roll out within {timeout}s")

    def chart_config_map_bodies(self) -> list[tuple[str, dict]]:
        """(namespace, ConfigMap) the chart's pre-install/pre-upgrade hooks write: ``aws_config_map.yaml``
        (``default-config`` in each of ``aws.configMap.namespaces``, profile ``default``; the on-prem ServiceAccount
        has no role annotation, so ``role_arn`` renders empty) and ``service_config_map.yaml`` (the service config
        in the release namespace and a copy in the endpoint namespace)."""
        cfg = self.config
        tag = MODEL_ENGINE_IMAGE.rsplit(":", 1)[1]
        labels = {"team": "infra", "app.kubernetes.io/version": tag, "tags.datadoghq.com/version": tag,
                  "tags.datadoghq.com/env": cfg.context, "env": cfg.context, "product": "model-engine",
                  "helm.sh/chart": "model-engine-0.2.7", "app.kubernetes.io/managed-by": "Helm"}
        hook = {"helm.sh/hook": "pre-install,pre-upgrade", "helm.sh/hook-weight": "-2"}
        launch = {"dd_trace_enabled": str(cfg.dd_trace_enabled).lower(), "endpoint_namespace": cfg.endpoint_namespace,
                  "vllm_repository": cfg.vllm_repository, "cache_redis_onprem_url": cfg.cache_redis_url}
        infra = {"cloud_provider": cfg.cloud_provider, "docker_repo_prefix": cfg.docker_repo_prefix,
                 "docker_registry_type": "onprem", "s3_bucket": cfg.s3_bucket,
                 "profile_ml_inference_worker": cfg.aws_profile}
        if cfg.prometheus_server_address:
            infra["prometheus_server_address"] = cfg.prometheus_server_address

        def block(first: str, values: dict) -> str:
            return "\n".join([first] + [f"{k}: {json.dumps(str(v))}" for k, v in sorted(values.items())])

        service_data = {"launch_service_config": block(f"dd_trace_enabled: {json.dumps(launch.pop('dd_trace_enabled'))}",
                                                       launch),
                        "infra_service_config": block(f"env: {json.dumps(cfg.context)}", infra)}
        out = []
        namespaces = list(dict.fromkeys([cfg.gateway_namespace, cfg.endpoint_namespace]))
        if cfg.aws_config_map_name:
            aws = {"config": f"[profile {cfg.aws_profile}]\nrole_arn = \n"
                             "web_identity_token_file = /var/run/secrets/eks.amazonaws.com/serviceaccount/token"}
            out += [(ns, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
                "name": cfg.aws_config_map_name, "namespace": ns, "labels": dict(labels), "annotations": dict(hook)},
                "data": dict(aws)}) for ns in namespaces]
        out += [(ns, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": cfg.service_config_map, "namespace": ns, "labels": dict(labels), "annotations": dict(hook)},
            "data": dict(service_data)}) for ns in namespaces]
        return out

    async def chart_config_maps(self) -> None:
        """(Re)create the chart's ConfigMaps, as `helm upgrade` re-running its pre-upgrade hooks would."""
        for ns, body in self.chart_config_map_bodies():
            await self.kube.apply("ConfigMap", ns, body)

    def info(self) -> dict:
        return {
            "state_dir": str(self.state_dir),
            "pid": os.getpid(),
            "model_engine_url": self.api_url,
            "model_engine_user": DEFAULT_USER,
            "kubernetes_url": self.emulator.url if self.emulator else None,
            "ports": {"model_engine": int(self.api_url.rsplit(":", 1)[1]) if self.api_url else None,
                      "kubernetes": self.emulator.port if self.emulator else None,
                      "s3": self.s3.port,
                      "registry": self.registry_server.port if self.registry_server else None},
            "kubeconfig": str(self.emulator.kubeconfig_path) if self.emulator else None,
            # kubeconfig contexts: admin over HTTP (current), the read-only identity and the admin over HTTPS
            "kubernetes_tls_url": self.emulator.tls_url if self.emulator else None,
            "kube_contexts": {"admin": "twin", "readonly": READONLY_CONTEXT, "admin_tls": "twin-tls"},
            "kube_tokens": {"admin": ADMIN_TOKEN, "readonly": READONLY_TOKEN},
            "gateway_service": {"namespace": self.config.gateway_namespace, "name": "model-engine", "port": 80,
                                "target_port": 5000},
            "s3": {"kind": self.options.s3, "endpoint_url": self.s3.endpoint_url, "pid": self.s3.pid,
                   "bucket": self.options.bucket, "access_key": self.s3.access_key,
                   "secret_key": self.s3.secret_key, "region": self.s3.region},
            "registry": self._registry_info(),
            "namespace": self.config.gateway_namespace,
            "endpoint_namespace": self.config.endpoint_namespace,
            "download_form": self.config.download_form,
        }

    def _registry_info(self) -> dict | None:
        srv = self.registry_server
        if srv is None:
            return None
        return {"url": srv.url, "pid": srv.pid, "auth": srv.auth, "token_realm": srv.realm,
                "token_service": TOKEN_SERVICE if srv.auth == "token" else None,
                "serves_host": "registry.odp.om", "pull_secret": PULL_SECRET_NAME,
                "username": PULL_USER, "password": PULL_PASSWORD}

    def request_counts(self) -> dict:
        """Requests served so far, for counting what a client sent (subtract an earlier snapshot):
        ``{"gateway": Counter((agent, method, route)), "kubernetes": Counter((client, method))}``. The twin's own
        Kubernetes requests (builder, pod simulator, control-plane watch) are under client ``"twin"``."""
        from collections import Counter

        return {"gateway": Counter(self.api.request_counts if self.api else {}),
                "kubernetes": Counter(self.emulator.api.request_counts if self.emulator else {})}

    def health_turned_200_at(self, endpoint_name: str) -> float | None:
        """time.time() when the endpoint's simulated vLLM last started answering /health with 200."""
        return self.pod_runtime.ready_times.get(endpoint_name)

    def write_state_files(self) -> None:
        info = self.info()
        (self.state_dir / "twin.json").write_text(json.dumps(info, indent=2) + "\n")
        kc = self.state_dir / "kubeconfig"
        kc.write_text(Path(info["kubeconfig"]).read_text())
        targets = [self.state_dir / "inventories" / "local"]
        if self.options.inventory_dir:
            targets.append(Path(self.options.inventory_dir))
        for inventory in targets:
            gv = inventory / "group_vars" / "all"
            gv.mkdir(parents=True, exist_ok=True)
            (gv / "twin.yml").write_text(self._group_vars(kc))

    def _group_vars(self, kc: Path) -> str:
        return (
            "---\n"
            "# Generated by `python -m tests.twin up`; do not edit (gitignored, lint-clean like the rest of the inventory).\n"
            f"odp_twin_state_dir: {json.dumps(str(self.state_dir))}\n"
            f"model_engine_url: {json.dumps(self.api_url)}\n"
            f"model_engine_user: {DEFAULT_USER}\n"
            "model_engine_validate_certs: false\n"
            f"k8s_kubeconfig: {json.dumps(str(kc))}\n"
            f"model_engine_namespace: {self.config.gateway_namespace}\n"
            f"model_engine_endpoint_namespace: {self.config.endpoint_namespace}\n"
            f"s3_endpoint_url: {json.dumps(self.s3.endpoint_url)}\n"
            f"s3_bucket: {self.options.bucket}\n"
            f"s3_access_key: {self.s3.access_key}\n"
            f"s3_secret_key: {self.s3.secret_key}\n"
            f"s3_region: {self.s3.region}\n"
            f"model_engine_registry_url: {json.dumps(self.registry_server.url)}\n"
            f"model_engine_registry_pull_secret: {PULL_SECRET_NAME}\n")

    async def astop(self) -> None:
        if self.builder:
            await self.builder.stop()
        if self._cp_task:
            self._cp_task.cancel()
            try:
                await self._cp_task
            except (asyncio.CancelledError, Exception):
                pass
        if self.api_runner:
            await self.api_runner.cleanup()
        if self._session:
            await self._session.close()
        if self.emulator:
            await self.emulator.stop()
        if self.kube:
            self.kube.close()
        if self.s3:
            await asyncio.to_thread(self.s3.stop)
        if self.registry_server:
            await asyncio.to_thread(self.registry_server.stop)

    # ---- thread wrapper --------------------------------------------------------------------------------------
    def start(self, timeout: float = 60) -> Twin:
        started = threading.Event()
        error: list = []

        def runner():
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.astart())
            except BaseException as exc:  # surfaced to the caller of start()
                error.append(exc)
                try:
                    loop.run_until_complete(self.astop())
                finally:
                    started.set()
                loop.close()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self.astop())
            loop.close()

        self._thread = threading.Thread(target=runner, name="odp-twin", daemon=True)
        self._thread.start()
        if not started.wait(timeout):
            raise TimeoutError("twin did not start in time")
        if error:
            raise error[0]
        return self

    def call(self, coro, timeout: float = 60):
        """Run a coroutine on the twin's loop from another thread."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop(self) -> None:
        if self._loop and self._thread and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
