"""Minimal, dependency-free safetensors writer/reader.

Format: 8-byte little-endian unsigned header length N, then N bytes of JSON header
(``{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}``),
then the raw tensor bytes.  ``data_offsets`` are relative to the end of the header and the
byte buffer must be exactly ``max(end)`` long, which is what vLLM/safetensors check on load.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

DTYPE_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
               "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}


class SafetensorsError(ValueError):
    """Raised when a file is not a valid safetensors file (vLLM would crash on it)."""


def _deterministic_bytes(seed: str, length: int) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < length:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest() * 64
        counter += 1
    return bytes(out[:length])


def build(tensors: list[tuple[str, str, list[int]]], seed: str, metadata: dict | None = None) -> bytes:
    """Serialise tensors given as (name, dtype, shape) with deterministic content derived from seed."""
    header: dict = {"__metadata__": metadata or {"format": "pt"}}
    offset = 0
    for name, dtype, shape in tensors:
        n = DTYPE_SIZES[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)  # the reference writer pads the header to 8 bytes
    return struct.pack("<Q", len(raw)) + raw + _deterministic_bytes(seed, offset)


def parse_header(data: bytes, total_size: int | None = None) -> dict:
    """Parse and validate the header at the start of ``data``; check sizes against total_size."""
    if len(data) < 8:
        raise SafetensorsError("Error while deserializing header: HeaderTooSmall")
    (n,) = struct.unpack("<Q", data[:8])
    if n > 100_000_000:
        raise SafetensorsError("Error while deserializing header: HeaderTooLarge")
    if len(data) < 8 + n:
        raise SafetensorsError("Error while deserializing header: InvalidHeaderLength")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SafetensorsError("Error while deserializing header: InvalidHeaderDeserialization") from exc
    if not isinstance(header, dict):
        raise SafetensorsError("Error while deserializing header: InvalidHeaderDeserialization")
    end_max = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
            expected = DTYPE_SIZES[dtype]
        except (KeyError, TypeError, ValueError) as exc:
            raise SafetensorsError("Error while deserializing header: InvalidHeaderDeserialization") from exc
        for d in shape:
            expected *= d
        if end - begin != expected:
            raise SafetensorsError(f"Error while deserializing header: TensorInvalidInfo ({name})")
        end_max = max(end_max, end)
    if total_size is not None and 8 + n + end_max != total_size:
        raise SafetensorsError("Error while deserializing header: MetadataIncompleteBuffer")
    return header


def read_file_header(path: Path) -> dict:
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise SafetensorsError("Error while deserializing header: HeaderTooSmall")
        (n,) = struct.unpack("<Q", head)
        if n > 100_000_000:
            raise SafetensorsError("Error while deserializing header: HeaderTooLarge")
        return parse_header(head + fh.read(n), size)


def data_digest(path: Path) -> str:
    """sha256 of the tensor bytes (after the header); used to detect flipped bytes."""
    with path.open("rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        fh.seek(8 + n)
        h = hashlib.sha256()
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
