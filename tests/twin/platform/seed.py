"""Seed the twin's S3 bucket with small but realistic Hugging Face style checkpoints.

Layout (bucket ``scale-gp-models`` by default):

* ``intermediate-model-aws/`` - the runbook's checkpoint: Qwen3ForCausalLM, ``config.json``,
  ``generation_config.json``, ``model.safetensors.index.json`` (weight_map names every shard), three
  ``model-0000N-of-00003.safetensors`` shards with valid headers, tokenizer files.
* ``qwen3-multipart/`` - Qwen3 with one shard larger than 12 MiB uploaded with multipart
  (5 MiB parts), so its ETag has the ``-N`` suffix.
* ``llama-3-8b-instruct/`` - a second architecture (LlamaForCausalLM), two shards.
* ``empty-model/`` - an empty prefix (only the zero-byte folder marker object).
* ``no-safetensors-model/`` - ``config.json`` + ``pytorch_model.bin``, no safetensors (API 400 path).

All content is deterministic, so ETags and digests are stable across runs.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass

from . import safetensors

MiB = 1024 * 1024
DEFAULT_BUCKET = "scale-gp-models"


@dataclass
class SeedConfig:
    shard_bytes: int = 192 * 1024          # approximate size of each shard of the small checkpoints
    multipart_shard_bytes: int = 13 * MiB  # must stay > 12 MiB so that 5 MiB parts give >= 3 parts
    multipart_part_size: int = 5 * MiB


def _qwen3_config(vocab: int, hidden: int, layers: int, inter: int) -> dict:
    return {
        "architectures": ["Qwen3ForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 151643,
        "eos_token_id": 151645,
        "head_dim": hidden // 4,
        "hidden_act": "silu",
        "hidden_size": hidden,
        "initializer_range": 0.02,
        "intermediate_size": inter,
        "max_position_embeddings": 40960,
        "max_window_layers": layers,
        "model_type": "qwen3",
        "num_attention_heads": 4,
        "num_hidden_layers": layers,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-06,
        "rope_scaling": None,
        "rope_theta": 1000000,
        "sliding_window": None,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.51.0",
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": vocab,
    }


def _llama_config(vocab: int, hidden: int, layers: int, inter: int) -> dict:
    return {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 128000,
        "eos_token_id": [128001, 128008, 128009],
        "hidden_act": "silu",
        "hidden_size": hidden,
        "initializer_range": 0.02,
        "intermediate_size": inter,
        "max_position_embeddings": 8192,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": 4,
        "num_hidden_layers": layers,
        "num_key_value_heads": 2,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "rope_theta": 500000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.43.0",
        "use_cache": True,
        "vocab_size": vocab,
    }


def _layer_tensors(i: int, hidden: int, kv: int, inter: int, qk_norm: bool) -> list:
    p = f"model.layers.{i}."
    out = [
        (p + "input_layernorm.weight", "BF16", [hidden]),
        (p + "mlp.down_proj.weight", "BF16", [hidden, inter]),
        (p + "mlp.gate_proj.weight", "BF16", [inter, hidden]),
        (p + "mlp.up_proj.weight", "BF16", [inter, hidden]),
        (p + "post_attention_layernorm.weight", "BF16", [hidden]),
        (p + "self_attn.k_proj.weight", "BF16", [kv, hidden]),
        (p + "self_attn.o_proj.weight", "BF16", [hidden, hidden]),
        (p + "self_attn.q_proj.weight", "BF16", [hidden, hidden]),
        (p + "self_attn.v_proj.weight", "BF16", [kv, hidden]),
    ]
    if qk_norm:
        out += [(p + "self_attn.k_norm.weight", "BF16", [hidden // 4]),
                (p + "self_attn.q_norm.weight", "BF16", [hidden // 4])]
    return out


def _tokenizer_files(vocab: int, family: str) -> dict[str, bytes]:
    base = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] if family == "qwen3" else [
        "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"]
    words = [f"tok{i}" for i in range(min(vocab, 512) - len(base))]
    vocab_map = {w: i for i, w in enumerate(words)}
    merges = [f"t o{i % 10}" for i in range(64)]
    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": len(words) + i, "content": t, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True} for i, t in enumerate(base)],
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                          "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False,
                  "vocab": vocab_map, "merges": merges},
    }
    chat = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
            "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
            "{% endif %}")
    cfg = {"add_bos_token": family != "qwen3", "add_prefix_space": False, "bos_token": None if family == "qwen3"
           else base[0], "chat_template": chat, "clean_up_tokenization_spaces": False, "eos_token": base[-1],
           "errors": "replace", "model_max_length": 131072, "pad_token": base[0], "split_special_tokens": False,
           "tokenizer_class": "Qwen2Tokenizer" if family == "qwen3" else "PreTrainedTokenizerFast",
           "unk_token": None}
    files = {
        "tokenizer.json": json.dumps(tok, indent=2).encode(),
        "tokenizer_config.json": json.dumps(cfg, indent=2).encode(),
    }
    if family == "qwen3":
        files["vocab.json"] = json.dumps(vocab_map).encode()
        files["merges.txt"] = ("#version: 0.2\n" + "\n".join(merges) + "\n").encode()
    else:
        files["special_tokens_map.json"] = json.dumps({"bos_token": base[0], "eos_token": base[-1]}).encode()
    return files


def build_checkpoint(family: str, num_shards: int, shard_bytes: int, seed: str) -> dict[str, bytes]:
    """Return {relative key: bytes} for one checkpoint."""
    hidden, inter, kv, layers = 64, 192, 32, 2 * num_shards
    # embed_tokens (first shard) and lm_head (last shard) dominate the size, like in real small models.
    vocab = max(1024, shard_bytes // (hidden * 2))
    cfg = _qwen3_config(vocab, hidden, layers, inter) if family == "qwen3" else _llama_config(
        vocab, hidden, layers, inter)
    shards: list[list] = [[] for _ in range(num_shards)]
    shards[0].append(("model.embed_tokens.weight", "BF16", [vocab, hidden]))
    for i in range(layers):
        shards[min(i * num_shards // layers, num_shards - 1)] += _layer_tensors(i, hidden, kv, inter,
                                                                               family == "qwen3")
    shards[-1] += [("model.norm.weight", "BF16", [hidden]), ("lm_head.weight", "BF16", [vocab, hidden])]
    files: dict[str, bytes] = {}
    weight_map: dict[str, str] = {}
    total = 0
    for idx, tensors in enumerate(shards, start=1):
        name = f"model-{idx:05d}-of-{num_shards:05d}.safetensors"
        data = safetensors.build(tensors, seed=f"{seed}/{name}")
        files[name] = data
        for t in tensors:
            weight_map[t[0]] = name
            n = 2
            for d in t[2]:
                n *= d
            total += n
    files["model.safetensors.index.json"] = json.dumps(
        {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, indent=2).encode()
    files["config.json"] = json.dumps(cfg, indent=2).encode()
    gen = {"bos_token_id": cfg["bos_token_id"], "eos_token_id": cfg["eos_token_id"], "do_sample": True,
           "temperature": 0.6, "top_p": 0.95, "top_k": 20, "transformers_version": cfg["transformers_version"]}
    files["generation_config.json"] = json.dumps(gen, indent=2).encode()
    files.update(_tokenizer_files(vocab, family))
    return files


def multipart_etag(data: bytes, part_size: int) -> str:
    parts = [data[i:i + part_size] for i in range(0, len(data), part_size)]
    if len(parts) <= 1:
        return '"' + hashlib.md5(data).hexdigest() + '"'
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    return f'"{digest}-{len(parts)}"'


def seed(s3_client, bucket: str = DEFAULT_BUCKET, config: SeedConfig | None = None) -> dict:
    """Create the bucket and upload every checkpoint. Returns a manifest {prefix: {key: {size, etag}}}."""
    from boto3.s3.transfer import TransferConfig

    cfg = config or SeedConfig()
    try:
        s3_client.create_bucket(Bucket=bucket)
    except s3_client.exceptions.BucketAlreadyOwnedByYou:
        pass
    manifest: dict[str, dict] = {}

    def put_all(prefix: str, files: dict[str, bytes], multipart: set[str] = frozenset()) -> None:
        entries = manifest.setdefault(prefix, {})
        for rel, data in sorted(files.items()):
            key = f"{prefix}{rel}"
            if rel in multipart:
                tc = TransferConfig(multipart_threshold=cfg.multipart_part_size,
                                    multipart_chunksize=cfg.multipart_part_size, use_threads=False)
                s3_client.upload_fileobj(io.BytesIO(data), bucket, key, Config=tc)
                etag = multipart_etag(data, cfg.multipart_part_size)
            else:
                s3_client.put_object(Bucket=bucket, Key=key, Body=data)
                etag = '"' + hashlib.md5(data).hexdigest() + '"'
            entries[rel] = {"size": len(data), "etag": etag}

    put_all("intermediate-model-aws/", build_checkpoint("qwen3", 3, cfg.shard_bytes, "intermediate-model-aws"))
    big = build_checkpoint("qwen3", 2, cfg.multipart_shard_bytes, "qwen3-multipart")
    put_all("qwen3-multipart/", big, multipart={"model-00001-of-00002.safetensors",
                                                 "model-00002-of-00002.safetensors"})
    put_all("llama-3-8b-instruct/", build_checkpoint("llama", 2, cfg.shard_bytes, "llama-3-8b-instruct"))
    s3_client.put_object(Bucket=bucket, Key="empty-model/", Body=b"")
    manifest["empty-model/"] = {}
    nosafe = build_checkpoint("qwen3", 1, 64 * 1024, "no-safetensors-model")
    nosafe = {k: v for k, v in nosafe.items() if not k.endswith(".safetensors") and "index" not in k}
    nosafe["pytorch_model.bin"] = b"PK\x03\x04" + hashlib.sha256(b"bin").digest() * 512
    put_all("no-safetensors-model/", nosafe)
    return manifest
