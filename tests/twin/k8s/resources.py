"""The resource types the emulator serves (group, version, kind, plural, scope, verbs, subresources)."""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
READ_VERBS = ("get", "list", "watch")


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    categories: tuple[str, ...] = ()
    # events.k8s.io/v1 Event shares storage with core/v1 Event
    storage: str | None = None
    singular: str = field(default="")
    # A kind an installed CustomResourceDefinition serves (VPA, KEDA): no strategic merge patch, the deleted object is
    # returned on DELETE, a CustomResourceDefinition object describes it, and ``kubectl get`` prints ``printer_columns``
    # (name, type, JSONPath) like the CRD's additionalPrinterColumns (default: Age).
    custom: bool = False
    printer_columns: tuple[tuple[str, str, str], ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def prefix(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    @property
    def key(self) -> str:
        """Storage key: resources sharing storage share the key."""
        return self.storage or f"{self.group}/{self.plural}"

    @property
    def singular_name(self) -> str:
        return self.singular or self.kind.lower()

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def qualified(self) -> str:
        """e.g. ``deployments.apps`` or ``pods`` (used in error messages)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _r(group, version, kind, plural, namespaced, short=(), sub=(), verbs=ALL_VERBS, cats=(), storage=None):
    return ResourceType(group, version, kind, plural, namespaced, tuple(short), tuple(sub), tuple(verbs), tuple(cats), storage)


def _crd(group, version, kind, plural, namespaced, short=(), sub=("status",), columns=()):
    return ResourceType(group, version, kind, plural, namespaced, tuple(short), tuple(sub), custom=True,
                        printer_columns=tuple(columns))


AGE_COLUMN = ("Age", "date", ".metadata.creationTimestamp")
# kubernetes/autoscaler vertical-pod-autoscaler/deploy/vpa-v1-crd-gen.yaml (additionalPrinterColumns of v1)
VPA_COLUMNS = (("Mode", "string", ".spec.updatePolicy.updateMode"),
               ("CPU", "string", ".status.recommendation.containerRecommendations[0].target.cpu"),
               ("Mem", "string", ".status.recommendation.containerRecommendations[0].target.memory"),
               ("Provided", "string", ".status.conditions[?(@.type=='RecommendationProvided')].status"),
               AGE_COLUMN)
# kedacore/keda apis/keda/v1alpha1/scaledobject_types.go (+kubebuilder:printcolumn markers)
SCALEDOBJECT_COLUMNS = (("ScaleTargetKind", "string", ".status.scaleTargetKind"),
                        ("ScaleTargetName", "string", ".spec.scaleTargetRef.name"),
                        ("Min", "integer", ".spec.minReplicaCount"),
                        ("Max", "integer", ".spec.maxReplicaCount"),
                        ("Ready", "string", '.status.conditions[?(@.type=="Ready")].status'),
                        ("Active", "string", '.status.conditions[?(@.type=="Active")].status'),
                        ("Fallback", "string", '.status.conditions[?(@.type=="Fallback")].status'),
                        ("Paused", "string", '.status.conditions[?(@.type=="Paused")].status'),
                        ("Triggers", "string", ".status.triggersTypes"),
                        ("Authentications", "string", ".status.authenticationsTypes"),
                        AGE_COLUMN)


RESOURCES: list[ResourceType] = [
    _r("", "v1", "Namespace", "namespaces", False, ["ns"], ["status", "finalize"],
       verbs=("create", "delete", "get", "list", "patch", "update", "watch")),
    _r("", "v1", "Node", "nodes", False, ["no"], ["status", "proxy"]),
    _r("", "v1", "Pod", "pods", True, ["po"], ["status", "log", "exec", "portforward", "proxy", "binding", "eviction"], cats=["all"]),
    _r("", "v1", "Service", "services", True, ["svc"], ["status", "proxy"],
       verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"), cats=["all"]),
    _r("", "v1", "ConfigMap", "configmaps", True, ["cm"]),
    _r("", "v1", "Secret", "secrets", True),
    _r("", "v1", "Event", "events", True, ["ev"], storage="/events"),
    _r("", "v1", "ServiceAccount", "serviceaccounts", True, ["sa"]),
    _r("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, ["pvc"], ["status"]),
    _r("", "v1", "PersistentVolume", "persistentvolumes", False, ["pv"], ["status"]),
    _r("", "v1", "Endpoints", "endpoints", True, ["ep"]),
    _r("apps", "v1", "Deployment", "deployments", True, ["deploy"], ["status", "scale"], cats=["all"]),
    _r("apps", "v1", "ReplicaSet", "replicasets", True, ["rs"], ["status", "scale"], cats=["all"]),
    _r("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True, ["hpa"], ["status"], cats=["all"]),
    _r("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True, ["pdb"], ["status"]),
    _r("storage.k8s.io", "v1", "StorageClass", "storageclasses", False, ["sc"]),
    _r("events.k8s.io", "v1", "Event", "events", True, ["ev"], verbs=READ_VERBS, storage="/events"),
    # coordination.k8s.io/v1 Lease: the lock object of leader election and of the collection's GPU reservation
    _r("coordination.k8s.io", "v1", "Lease", "leases", True),
    # The CRDs of the cluster's add-ons are installed (read-only objects; see README "Known differences").
    _r("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False, ["crd", "crds"],
       ["status"], verbs=READ_VERBS, cats=["api-extensions"]),
    # Custom resources the model-engine builder writes: the VPA add-on and KEDA.
    _crd("autoscaling.k8s.io", "v1", "VerticalPodAutoscaler", "verticalpodautoscalers", True, ["vpa"], columns=VPA_COLUMNS),
    _crd("keda.sh", "v1alpha1", "ScaledObject", "scaledobjects", True, ["so"], columns=SCALEDOBJECT_COLUMNS),
    # create-only reviews answered by the authorizer, never stored (auth.py)
    _r("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", False, verbs=("create",)),
    _r("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews", False, verbs=("create",)),
    _r("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", False, verbs=("create",)),
]

# group -> preferred version (first listed wins)
GROUP_VERSIONS: dict[str, list[str]] = {}
for _rt in RESOURCES:
    GROUP_VERSIONS.setdefault(_rt.group, [])
    if _rt.version not in GROUP_VERSIONS[_rt.group]:
        GROUP_VERSIONS[_rt.group].append(_rt.version)


def find(group: str, version: str, plural: str) -> ResourceType | None:
    for rt in RESOURCES:
        if rt.group == group and rt.version == version and rt.plural == plural:
            return rt
    return None


def by_kind(api_version: str, kind: str) -> ResourceType | None:
    for rt in RESOURCES:
        if rt.api_version == api_version and rt.kind == kind:
            return rt
    return None


def storage_type(key: str) -> ResourceType:
    """The canonical (first registered) resource type for a storage key."""
    for rt in RESOURCES:
        if rt.key == key:
            return rt
    raise KeyError(key)


def in_group_version(group: str, version: str) -> list[ResourceType]:
    return [rt for rt in RESOURCES if rt.group == group and rt.version == version]


POD = find("", "v1", "pods")
NODE = find("", "v1", "nodes")
NAMESPACE = find("", "v1", "namespaces")
EVENT = find("", "v1", "events")
SERVICE = find("", "v1", "services")
SECRET = find("", "v1", "secrets")
CONFIGMAP = find("", "v1", "configmaps")
SERVICEACCOUNT = find("", "v1", "serviceaccounts")
DEPLOYMENT = find("apps", "v1", "deployments")
REPLICASET = find("apps", "v1", "replicasets")
ENDPOINTS = find("", "v1", "endpoints")
PDB = find("policy", "v1", "poddisruptionbudgets")
PVC = find("", "v1", "persistentvolumeclaims")
PV = find("", "v1", "persistentvolumes")
STORAGECLASS = find("storage.k8s.io", "v1", "storageclasses")
HPA = find("autoscaling", "v2", "horizontalpodautoscalers")
CRD = find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
VPA = find("autoscaling.k8s.io", "v1", "verticalpodautoscalers")
SCALEDOBJECT = find("keda.sh", "v1alpha1", "scaledobjects")
LEASE = find("coordination.k8s.io", "v1", "leases")
