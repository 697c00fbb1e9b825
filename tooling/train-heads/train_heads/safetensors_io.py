"""Minimal safetensors reader/writer (no `safetensors` package needed).

Format: 8-byte little-endian header length N, N bytes of JSON header
{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}, then raw
little-endian tensor bytes. bf16 <-> f32 conversion is done by 16-bit shifts (round to nearest
even when writing).
"""
import json
import os
import struct

import numpy as np
import torch

_NP = {
    "F32": np.float32,
    "F16": np.float16,
    "F64": np.float64,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}


def bf16_bits_to_f32(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """Round-to-nearest-even float32 -> bfloat16 bit pattern (uint16). NaN stays NaN."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    u = x.view(np.uint32).astype(np.uint64)
    rounding = ((u >> 16) & 1) + 0x7FFF
    r = ((u + rounding) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    if nan.any():
        r[nan] = 0x7FC0
    return r


def read_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n).decode("utf8"))
    return header, 8 + n


def load_file(path, dtype=torch.float32):
    """Load every tensor of one .safetensors file. Float tensors are converted to `dtype`
    (None keeps the stored float dtype, with bf16 returned as torch.bfloat16)."""
    header, base = read_header(path)
    with open(path, "rb") as f:
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = data[base + b : base + e]
        shape = info["shape"]
        dt = info["dtype"]
        if dt == "BF16":
            bits = np.frombuffer(raw, dtype="<u2").reshape(shape)
            if dtype is None:
                t = torch.from_numpy(bits.astype(np.int16).copy()).view(torch.bfloat16)
            else:
                t = torch.from_numpy(bf16_bits_to_f32(bits).copy()).to(dtype)
        else:
            if dt not in _NP:
                raise ValueError(f"unsupported dtype {dt} for {name}")
            arr = np.frombuffer(raw, dtype=np.dtype(_NP[dt]).newbyteorder("<")).reshape(shape)
            t = torch.from_numpy(arr.copy())
            if dtype is not None and t.is_floating_point():
                t = t.to(dtype)
        out[name] = t
    return out


def load_metadata(path):
    header, _ = read_header(path)
    return header.get("__metadata__", {})


def save_file(tensors, path, dtype="BF16", metadata=None):
    """Write tensors. dtype: "BF16", "F16" or "F32" for float tensors; integer tensors keep theirs.
    Tensors are written in sorted-name order, 8-byte aligned header."""
    header = {}
    blobs = []
    off = 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu()
        if t.is_floating_point():
            a = t.to(torch.float32).numpy()
            if dtype == "BF16":
                raw = f32_to_bf16_bits(a).astype("<u2").tobytes()
            elif dtype == "F16":
                raw = a.astype("<f2").tobytes()
            elif dtype == "F32":
                raw = a.astype("<f4").tobytes()
            else:
                raise ValueError(dtype)
            dt = dtype
        else:
            a = t.numpy()
            inv = {np.dtype(v): k for k, v in _NP.items()}
            dt = inv[a.dtype]
            raw = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    hb = json.dumps(header, separators=(",", ":")).encode("utf8")
    hb += b" " * ((8 - len(hb) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for raw in blobs:
            f.write(raw)
    os.replace(tmp, path)


def load_hf_folder_weights(folder, dtype=torch.float32):
    """Load a Hugging Face model folder: single model.safetensors or index + shards."""
    single = os.path.join(folder, "model.safetensors")
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(single):
        return load_file(single, dtype)
    if os.path.exists(index):
        with open(index) as f:
            wm = json.load(f)["weight_map"]
        out = {}
        for shard in sorted(set(wm.values())):
            out.update(load_file(os.path.join(folder, shard), dtype))
        return out
    raise FileNotFoundError(f"no model.safetensors or model.safetensors.index.json in {folder}")
