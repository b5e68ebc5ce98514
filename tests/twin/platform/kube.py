"""Kubernetes access for the twin's control plane, through the HTTP API with the official client.

The real model-engine uses ``kubernetes_asyncio``; the twin uses the synchronous ``kubernetes`` client in
worker threads (``asyncio.to_thread``) and plain dict bodies, and reads responses as JSON dicts.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import kubernetes
from kubernetes.client.exceptions import ApiException


class Kube:
    def __init__(self, kubeconfig: Path):
        self.kubeconfig = Path(kubeconfig)
        self.api_client = kubernetes.config.new_client_from_config(config_file=str(self.kubeconfig))
        self.core = kubernetes.client.CoreV1Api(self.api_client)
        self.apps = kubernetes.client.AppsV1Api(self.api_client)
        self.autoscaling = kubernetes.client.AutoscalingV2Api(self.api_client)

    @property
    def host(self) -> str:
        return self.api_client.configuration.host

    def auth_headers(self) -> dict:
        cfg = self.api_client.configuration
        token = (cfg.api_key or {}).get("authorization") or (cfg.api_key or {}).get("BearerToken")
        if token:
            return {"Authorization": token if token.lower().startswith("bearer ") else f"Bearer {token}"}
        return {}

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

    async def get(self, kind: str, name: str, namespace: str):
        """Return the object as a dict, or None when it does not exist."""
        fn = {
            "ConfigMap": self.core.read_namespaced_config_map,
            "Secret": self.core.read_namespaced_secret,
            "Service": self.core.read_namespaced_service,
            "Deployment": self.apps.read_namespaced_deployment,
            "HorizontalPodAutoscaler": self.autoscaling.read_namespaced_horizontal_pod_autoscaler,
        }[kind]
        try:
            return await self._call(fn, name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def create(self, kind: str, namespace: str, body: dict):
        fn = {
            "ConfigMap": self.core.create_namespaced_config_map,
            "Secret": self.core.create_namespaced_secret,
            "Service": self.core.create_namespaced_service,
            "ServiceAccount": self.core.create_namespaced_service_account,
            "Deployment": self.apps.create_namespaced_deployment,
            "HorizontalPodAutoscaler": self.autoscaling.create_namespaced_horizontal_pod_autoscaler,
        }[kind]
        return await self._call(fn, namespace, body)

    async def replace(self, kind: str, name: str, namespace: str, body: dict):
        fn = {
            "Deployment": self.apps.replace_namespaced_deployment,
            "HorizontalPodAutoscaler": self.autoscaling.replace_namespaced_horizontal_pod_autoscaler,
            "Service": self.core.replace_namespaced_service,
        }[kind]
        return await self._call(fn, name, namespace, body)

    async def patch(self, kind: str, name: str, namespace: str, body):
        fn = {
            "Deployment": self.apps.patch_namespaced_deployment,
            "Secret": self.core.patch_namespaced_secret,
            "ConfigMap": self.core.patch_namespaced_config_map,
        }[kind]
        return await self._call(fn, name, namespace, body)

    async def delete(self, kind: str, name: str, namespace: str) -> bool:
        """Delete; returns False when the object was already gone (404 tolerated like upstream)."""
        fn = {
            "Deployment": self.apps.delete_namespaced_deployment,
            "Service": self.core.delete_namespaced_service,
            "HorizontalPodAutoscaler": self.autoscaling.delete_namespaced_horizontal_pod_autoscaler,
            "ConfigMap": self.core.delete_namespaced_config_map,
        }[kind]
        try:
            await self._call(fn, name, namespace, propagation_policy="Background")
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise

    async def list_pods(self, namespace: str, label_selector: str) -> list:
        res = await self._call(self.core.list_namespaced_pod, namespace, label_selector=label_selector)
        return (res or {}).get("items", [])

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
