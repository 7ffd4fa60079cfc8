"""What accelbench's ONNX-based runners (onnxruntime_runner.py, openvino_runner.py) share:
the cell's model exported to ONNX from the same Hugging Face folder the other engines
load (the agent's seeded weights or real ones), and the cell's synthetic inputs.

The export runs once per weights folder and family and is cached (by the folder's path,
its weight file's size and modification time) under $ACCELBENCH_ONNX_CACHE, default
~/.cache/accelbench/onnx; it is written to a temporary name and renamed, so a reader
never sees half a file.
"""
import hashlib
import os

import numpy as np

import accelbench_runner as protocol

FAMILIES = ["bert", "vit"]
OPSET = 17


def cache_dir():
    default = os.path.join(os.path.expanduser("~"), ".cache", "accelbench", "onnx")
    return os.environ.get("ACCELBENCH_ONNX_CACHE", default)


def weights_key(folder, family):
    """A name for the export of `folder`: changes when its weights file changes."""
    st = os.stat(os.path.join(folder, "model.safetensors"))
    text = f"{os.path.abspath(folder)}|{st.st_size}|{st.st_mtime_ns}|{family}|opset{OPSET}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def exported(cell):
    """The path of the cell's model as ONNX (fp32), exporting it first if needed."""
    family = cell["family"]
    if family not in FAMILIES:
        raise protocol.Unsupported(f"the ONNX export covers {FAMILIES}, not {family!r}")
    folder = cell["weights"]
    if not os.path.isfile(os.path.join(folder, "model.safetensors")):
        raise protocol.Unsupported(f"{folder} is not a Hugging Face folder with model.safetensors")
    path = os.path.join(cache_dir(), f"{cell['model']}-{weights_key(folder, family)}.onnx")
    if not os.path.isfile(path):
        export(folder, family, path)
    return path


def export(folder, family, path):
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    auto = transformers.AutoModel if family == "bert" else transformers.AutoModelForImageClassification
    model, info = auto.from_pretrained(folder, torch_dtype=torch.float32, local_files_only=True, output_loading_info=True)
    missing = info.get("missing_keys", []) + [k for k, *_ in info.get("mismatched_keys", [])]
    if missing:
        raise RuntimeError(f"the weights in {folder} lack {len(missing)} tensors: {sorted(missing)[:5]}")
    model.eval()
    # The traced forward returns only the output the output check compares.
    if family == "bert":
        names, axes = ["input_ids", "attention_mask", "token_type_ids"], {0: "batch", 1: "seq"}
        example = tuple(torch.ones((1, 8), dtype=torch.int64) for _ in names)
        output = "hidden_states"

        class Traced(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, input_ids, attention_mask, token_type_ids):
                return self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state
    else:
        size = model.config.image_size
        names, axes = ["pixel_values"], {0: "batch"}
        example = (torch.zeros((1, model.config.num_channels, size, size)),)
        output = "logits"

        class Traced(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, pixel_values):
                return self.m(pixel_values=pixel_values).logits
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with torch.no_grad():
        torch.onnx.export(
            Traced(model),
            example,
            tmp,
            input_names=names,
            output_names=[output],
            dynamic_axes={**{n: axes for n in names}, output: {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    os.replace(tmp, path)


def synthetic_inputs(cell, config):
    """The cell's fixed inputs as numpy arrays, seeded by the cell's seed."""
    rng = np.random.default_rng(int(cell["seed"]))
    batch = int(cell["batch"])
    if cell["family"] == "bert":
        seq = int(cell["seq_len"])
        if seq > config["max_position_embeddings"]:
            raise protocol.Unsupported(f"seq_len {seq} exceeds max_position_embeddings {config['max_position_embeddings']}")
        ids = rng.integers(0, config["vocab_size"], size=(batch, seq), dtype=np.int64)
        return {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    size, channels = config["image_size"], config.get("num_channels", 3)
    return {"pixel_values": rng.standard_normal((batch, channels, size, size), dtype=np.float32)}


def read_config(folder):
    import json

    with open(os.path.join(folder, "config.json")) as f:
        return json.load(f)


def load_inputs(path):
    """Inputs of an `outputs` request (safetensors), as numpy arrays of the exported dtypes."""
    from safetensors.numpy import load_file

    given = load_file(path)
    return {k: (v.astype(np.float32) if k == "pixel_values" else v.astype(np.int64)) for k, v in given.items()}


def save_outputs(path, family, array):
    from safetensors.numpy import save_file

    name = "hidden_states" if family == "bert" else "logits"
    save_file({name: np.ascontiguousarray(array, dtype=np.float32)}, path)
