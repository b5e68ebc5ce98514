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
    # Download step of the main command, like the chart's service template / onprem build:
    download_tool: str = "s5cmd"                  # "s5cmd" (upstream) or "awscli" (runbook)
    wait_guard: bool = False                      # runbook's while-loop guard (awscli form only)
    s3_endpoint_url: str | None = None
    s3_credentials_secret: str = S3_SECRET_NAME   # extraPodEnvFrom
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

    def vllm_image(self, tag: str) -> str:
        repo = self.vllm_repository
        if "." not in repo.split("/")[0] and self.docker_repo_prefix:
            repo = f"{self.docker_repo_prefix}/{repo}"
        return f"{repo}:{tag}"
