"""The twin's service configuration: what the real chart's values.yaml / service config would say."""

from __future__ import annotations

from dataclasses import dataclass, field

REGISTRY = "registry.odp.om"
ME_REPO = "odp-development/oman-national-llm/model-engine"
VLLM_REPO = "odp-development/oman-national-llm/vllm"
ME_TAG = "onprem20"
MODEL_ENGINE_IMAGE = f"{REGISTRY}/{ME_REPO}:{ME_TAG}"

# Images the twin's registry knows.  0.6.3-rc1 exists but its vLLM lacks Qwen3ForCausalLM (runbook);
# onprem21 exists but crashes on start (a "broken" control-plane image); onprem22/onprem23 run a healthy control
# plane whose endpoint builder writes broken endpoint pods (image_behaviour.py).
DEFAULT_IMAGES = {
    f"{REGISTRY}/{ME_REPO}:onprem19",
    f"{REGISTRY}/{ME_REPO}:onprem20",
    f"{REGISTRY}/{ME_REPO}:onprem21",
    f"{REGISTRY}/{ME_REPO}:onprem22",
    f"{REGISTRY}/{ME_REPO}:onprem23",
    f"{REGISTRY}/{VLLM_REPO}:vllm-onprem",
    f"{REGISTRY}/{VLLM_REPO}:0.6.3-rc1",
    f"{REGISTRY}/{VLLM_REPO}:0.10.1",
}
DEFAULT_BROKEN_IMAGES = {f"{REGISTRY}/{ME_REPO}:onprem21"}

# vLLM image tags whose model registry includes Qwen3ForCausalLM ("architecture fixed", runbook).
ARCH_FIXED_TAGS = {"vllm-onprem"}
BASE_VLLM_ARCHITECTURES = [
    "AquilaForCausalLM", "BaiChuanForCausalLM", "BloomForCausalLM", "ChatGLMModel", "DeciLMForCausalLM",
    "FalconForCausalLM", "GemmaForCausalLM", "Gemma2ForCausalLM", "GPT2LMHeadModel", "GPTBigCodeForCausalLM",
    "GPTJForCausalLM", "GPTNeoXForCausalLM", "InternLMForCausalLM", "InternLM2ForCausalLM", "JAISLMHeadModel",
    "LlamaForCausalLM", "MistralForCausalLM", "MixtralForCausalLM", "MPTForCausalLM", "OLMoForCausalLM",
    "OPTForCausalLM", "PhiForCausalLM", "Phi3ForCausalLM", "QWenLMHeadModel", "Qwen2ForCausalLM",
    "Qwen2MoeForCausalLM", "StableLmForCausalLM", "Starcoder2ForCausalLM", "XverseForCausalLM",
]

RECOMMENDED_HARDWARE = {
    "byGpuMemoryGb": (
        "- gpu_memory_le: 20\n  cpus: 4\n  gpus: 1\n  memory: 16Gi\n  storage: 50Gi\n"
        "  gpu_type: nvidia-tesla-t4\n  nodes_per_worker: 1\n"
        "- gpu_memory_le: 40\n  cpus: 8\n  gpus: 2\n  memory: 32Gi\n  storage: 50Gi\n"
        "  gpu_type: nvidia-tesla-t4\n  nodes_per_worker: 1\n"
    ),
    "byModelName": (
        "- name: qwen3-8b\n  cpus: 4\n  gpus: 1\n  memory: 16Gi\n  storage: 50Gi\n"
        "  gpu_type: nvidia-tesla-t4\n  nodes_per_worker: 1\n"
    ),
}

LATEST_TAGS = {
    "vllm": "vllm-onprem",
    "sglang": "latest",
    "deepspeed": "latest",
    "text_generation_inference": "latest",
    "lightllm": "latest",
    "tensorrt_llm": "latest",
    "vllm_batch": "0.17.1-batch",
    "vllm_batch_v2": "0.17.1-batch",
}

S3_SECRET_NAME = "model-engine-s3-credentials"
AWS_CONFIG_MAP = "default-config"                # chart `aws.configMap.name` / `serviceTemplate.awsConfigMapName`
SERVICE_CONFIG_MAP = "model-engine-service-config"   # `<fullname>-service-config`, copied into the endpoint namespace

# The main container's download step: (tool, the runbook's wait guard).  "awscli" is the onprem20 image the runbook
# describes (the twin's default); "s5cmd" is upstream's `_create_vllm_bundle_command`.
DOWNLOAD_FORMS = {"awscli": ("awscli", True), "s5cmd": ("s5cmd", False)}


@dataclass
class ServiceConfig:
    gateway_namespace: str = "llm-core"
    endpoint_namespace: str = "llm-core"
    docker_repo_prefix: str = REGISTRY
    vllm_repository: str = VLLM_REPO
    forwarder_repository: str = f"{REGISTRY}/{ME_REPO}"
    context: str = "onprem"                       # chart `context` -> label env
    node_selector: dict = field(default_factory=lambda: {"node-lifecycle": "normal"})
    prometheus_server_address: str | None = None  # min_workers 0 allowed only when set
    # Download step of the main command: the on-prem image's form by default (see DOWNLOAD_FORMS)
    download_tool: str = "awscli"                 # "awscli" (runbook, onprem20) or "s5cmd" (upstream)
    wait_guard: bool = True                       # runbook's while-loop guard (awscli form only)
    s3_endpoint_url: str | None = None
    s3_credentials_secret: str = S3_SECRET_NAME   # extraPodEnvFrom
    # The chart's on-prem values that shape the endpoint pod (service_template_config_map.yaml, _helpers.tpl)
    aws_config_map_name: str = AWS_CONFIG_MAP     # the `aws` block is on: config-volume at /opt/.aws/config
    aws_profile: str = "default"                  # infra.profile_ml_inference_worker -> AWS_PROFILE
    service_config_map: str = SERVICE_CONFIG_MAP
    mount_infra_config: bool = True               # serviceTemplate.mountInfraConfig: main mounts it at /infra-config
    main_security_context: dict = field(default_factory=lambda: {"capabilities": {"drop": ["all"]}})
    cloud_provider: str = "onprem"
    s3_bucket: str = "scale-gp-models"            # infra.s3_bucket -> RESULTS_S3_BUCKET
    dd_trace_enabled: bool = False                # launch dd_trace_enabled -> the forwarder's DD_TRACE_ENABLED
    cache_redis_url: str = "redis://redis-master.llm-core.svc.cluster.local:6379/15"   # KEDA's redis trigger
    # Pod simulator timings (seconds / bytes per second).
    download_rate: float = 8 * 1024 * 1024
    awscli_install_seconds: float = 0.5
    awscli_startup_seconds: float = 1.0           # `aws` (Python) start + first ListObjectsV2 before any byte
    vllm_load_seconds: float = 0.5
    eviction_check_seconds: float = 1.0           # kubelet eviction-manager housekeeping (real: 10 s)
    guard_poll_seconds: float = 0.5               # the runbook's guard sleeps 5 s between checks
    crash_backoff_base: float = 0.5
    crash_backoff_max: float = 4.0
    control_plane_poll: float = 0.3
    model_cache_heartbeat_seconds: float = 1.0    # the cache lock's heartbeat (real: every 30 s)
    model_cache_wait_seconds: float = 0.5         # a replica waiting on another's lock sleeps (real: 10 s)

    @property
    def download_form(self) -> str:
        return "awscli" if self.download_tool == "awscli" else "s5cmd"

    def set_download_form(self, form: str) -> None:
        if form not in DOWNLOAD_FORMS:
            raise ValueError(f"download form must be one of {sorted(DOWNLOAD_FORMS)}, not {form!r}")
        self.download_tool, self.wait_guard = DOWNLOAD_FORMS[form]

    def vllm_image(self, tag: str) -> str:
        repo = self.vllm_repository
        if "." not in repo.split("/")[0] and self.docker_repo_prefix:
            repo = f"{self.docker_repo_prefix}/{repo}"
        return f"{repo}:{tag}"
