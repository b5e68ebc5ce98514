"""Kubernetes access for the twin's control plane, through the HTTP API with the official client.

The real model-engine uses ``kubernetes_asyncio`` (typed APIs for built-in kinds, ``CustomObjectsApi`` for the VPA,
KEDA, LeaderWorkerSet and Istio kinds); the twin uses the synchronous ``kubernetes`` client in worker threads
(``asyncio.to_thread``) with plain dict bodies, and reads responses as JSON dicts.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import kubernetes
from kubernetes.client.exceptions import ApiException

# kind -> (client API attribute, the snake_case name in its methods)
TYPED = {
    "ConfigMap": ("core", "config_map"),
    "Secret": ("core", "secret"),
    "Service": ("core", "service"),
    "ServiceAccount": ("core", "service_account"),
    "PersistentVolumeClaim": ("core", "persistent_volume_claim"),
    "Pod": ("core", "pod"),
    "Deployment": ("apps", "deployment"),
    "HorizontalPodAutoscaler": ("autoscaling", "horizontal_pod_autoscaler"),
    "PodDisruptionBudget": ("policy", "pod_disruption_budget"),
}
# kind -> (group, version, plural), as k8s_endpoint_resource_delegate.py addresses them
CUSTOM = {
    "VerticalPodAutoscaler": ("autoscaling.k8s.io", "v1", "verticalpodautoscalers"),
    "ScaledObject": ("keda.sh", "v1alpha1", "scaledobjects"),
    "LeaderWorkerSet": ("leaderworkerset.x-k8s.io", "v1", "leaderworkersets"),
    "DestinationRule": ("networking.istio.io", "v1beta1", "destinationrules"),
    "VirtualService": ("networking.istio.io", "v1alpha3", "virtualservices"),
}


TWIN_HEADER = "X-Odp-Twin"


class Kube:
    def __init__(self, kubeconfig: Path):
        self.kubeconfig = Path(kubeconfig)
        self.api_client = kubernetes.config.new_client_from_config(config_file=str(self.kubeconfig))
        # The emulator tells the twin's own requests from the clients' by this header (ApiServer.request_log, request_counts);
        # the User-Agent stays the client's own, as model-engine's field manager name depends on it.
        self.api_client.set_default_header(TWIN_HEADER, "control-plane")
        self.core = kubernetes.client.CoreV1Api(self.api_client)
        self.apps = kubernetes.client.AppsV1Api(self.api_client)
        self.autoscaling = kubernetes.client.AutoscalingV2Api(self.api_client)
        self.policy = kubernetes.client.PolicyV1Api(self.api_client)
        self.custom = kubernetes.client.CustomObjectsApi(self.api_client)

    @property
    def host(self) -> str:
        return self.api_client.configuration.host

    def auth_headers(self) -> dict:
        cfg = self.api_client.configuration
        token = (cfg.api_key or {}).get("authorization") or (cfg.api_key or {}).get("BearerToken")
        headers = {TWIN_HEADER: "control-plane"}
        if token:
            headers["Authorization"] = token if token.lower().startswith("bearer ") else f"Bearer {token}"
        return headers

    def close(self) -> None:
        try:
            self.api_client.close()
        except Exception:  # pragma: no cover - best effort
            pass

    @staticmethod
    def _load(resp):
        data = resp.data
        return json.loads(data) if data else None

    async def _call(self, fn, *args, **kwargs):
        def run():
            return self._load(fn(*args, _preload_content=False, **kwargs))

        return await asyncio.to_thread(run)

    def _typed(self, verb: str, kind: str):
        api, snake = TYPED[kind]
        return getattr(getattr(self, api), f"{verb}_namespaced_{snake}")

    async def get(self, kind: str, name: str, namespace: str):
        """Return the object as a dict, or None when it does not exist (or its kind is not served)."""
        try:
            if kind in CUSTOM:
                return await self._call(self.custom.get_namespaced_custom_object, *CUSTOM[kind][:2], namespace,
                                        CUSTOM[kind][2], name)
            return await self._call(self._typed("read", kind), name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def list(self, kind: str, namespace: str, label_selector: str | None = None) -> list:
        kw = {"label_selector": label_selector} if label_selector else {}
        if kind in CUSTOM:
            group, version, plural = CUSTOM[kind]
            res = await self._call(self.custom.list_namespaced_custom_object, group, version, namespace, plural, **kw)
        else:
            res = await self._call(self._typed("list", kind), namespace, **kw)
        return (res or {}).get("items", [])

    async def create(self, kind: str, namespace: str, body: dict):
        if kind in CUSTOM:
            group, version, plural = CUSTOM[kind]
            return await self._call(self.custom.create_namespaced_custom_object, group, version, namespace, plural, body)
        return await self._call(self._typed("create", kind), namespace, body)

    async def replace(self, kind: str, name: str, namespace: str, body: dict):
        if kind in CUSTOM:
            group, version, plural = CUSTOM[kind]
            return await self._call(self.custom.replace_namespaced_custom_object, group, version, namespace, plural, name,
                                    body)
        return await self._call(self._typed("replace", kind), name, namespace, body)

    async def patch(self, kind: str, name: str, namespace: str, body):
        """A strategic merge patch (the client's choice for a dict body on a built-in kind)."""
        return await self._call(self._typed("patch", kind), name, namespace, body)

    async def delete(self, kind: str, name: str, namespace: str) -> bool:
        """Delete; returns False when the object (or its kind) was not there (404 tolerated like upstream)."""
        try:
            if kind in CUSTOM:
                group, version, plural = CUSTOM[kind]
                await self._call(self.custom.delete_namespaced_custom_object, group, version, namespace, plural, name)
            else:
                await self._call(self._typed("delete", kind), name, namespace, propagation_policy="Background")
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise

    async def list_pods(self, namespace: str, label_selector: str) -> list:
        return await self.list("Pod", namespace, label_selector)

    async def ensure_namespace(self, name: str) -> None:
        try:
            await self._call(self.core.create_namespace, {"apiVersion": "v1", "kind": "Namespace",
                                                          "metadata": {"name": name}})
        except ApiException as exc:
            if exc.status != 409:
                raise

    async def apply(self, kind: str, namespace: str, body: dict) -> None:
        """Create, or replace when it exists (used for twin bootstrap objects)."""
        name = body["metadata"]["name"]
        try:
            await self.create(kind, namespace, body)
        except ApiException as exc:
            if exc.status != 409:
                raise
            if kind in ("Deployment", "HorizontalPodAutoscaler", "Service"):
                cur = await self.get(kind, name, namespace)
                body = dict(body)
                body["metadata"] = dict(body["metadata"], resourceVersion=cur["metadata"]["resourceVersion"])
                await self.replace(kind, name, namespace, body)
            else:
                await self.patch(kind, name, namespace, body)
