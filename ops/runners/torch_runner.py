#!/usr/bin/env python3
"""accelbench's PyTorch runner (docs/RUNNERS.md): PyTorch through Hugging Face
transformers, on the CPU, CUDA, ROCm (a ROCm build of torch, through the same code) or
Apple's MPS. One cell per process; the agent starts it and speaks the protocol.

Eager by default (engine `torch`); with `--compile` the model goes through
`torch.compile` (engine `torch-compile`), compiled at `load` by one forward pass on the
cell's inputs, so neither warmup nor timing includes the compilation. Where compiling
fails (no C++ compiler for the CPU backend, an unsupported device) the cell is answered
unsupported with the reason, never run eager under the compiled name.

Builds the model from the cell's weights folder (Hugging Face layout: config.json +
model.safetensors, real or the agent's seeded weights), never from the network.
Install: ops/runners/install-torch.sh.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import accelbench_runner as protocol  # noqa: E402

import torch  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
FAMILIES = ["bert", "vit"]


def devices():
    found = [{"device": "cpu", "name": protocol.cpu_name()}]
    if torch.cuda.is_available():
        # A ROCm build of torch answers through torch.cuda; the agent calls those rocm:N.
        kind = "rocm" if torch.version.hip else "cuda"
        for i in range(torch.cuda.device_count()):
            found.append({"device": f"{kind}:{i}", "name": torch.cuda.get_device_name(i)})
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append({"device": "mps", "name": "Apple MPS"})
    return found


def torch_device(name):
    """The torch device for the agent's device name, or Unsupported if absent here."""
    present = {d["device"] for d in devices()}
    if name not in present:
        raise protocol.Unsupported(f"device {name!r} is not available to torch here (it has {sorted(present)})")
    if name == "cpu" or name == "mps":
        return torch.device(name)
    return torch.device("cuda", int(name.split(":")[1]))


class TorchRunner:
    def __init__(self, compile_model):
        self.compile_model = compile_model

    def load(self, cell):
        family, precision = cell["family"], cell["precision"]
        if family not in FAMILIES:
            raise protocol.Unsupported(f"the torch runner builds {FAMILIES}, not {family!r}")
        if precision not in DTYPES:
            raise protocol.Unsupported(f"the torch runner runs {sorted(DTYPES)}, not {precision!r}")
        if cell["mode"] != "inference":
            raise protocol.Unsupported(f"the torch runner runs inference only, not {cell['mode']!r}")
        self.device = torch_device(cell["device"])
        self.family = family
        self.dtype = DTYPES[precision]
        import transformers
        transformers.logging.set_verbosity_error()
        auto = transformers.AutoModel if family == "bert" else transformers.AutoModelForImageClassification
        model, info = auto.from_pretrained(
            cell["weights"], torch_dtype=DTYPES[precision], local_files_only=True, output_loading_info=True
        )
        # Every weight from the file, none left to transformers' random init: rows of
        # different engines compare only on the same weights.
        missing = info.get("missing_keys", []) + [k for k, *_ in info.get("mismatched_keys", [])]
        if missing:
            raise RuntimeError(f"the weights in {cell['weights']} lack {len(missing)} tensors: {sorted(missing)[:5]}")
        self.model = model.to(self.device).eval()
        self.inputs = self.synthetic_inputs(cell)
        if self.compile_model:
            self.compile()
        return {"device": cell["device"], "execution_provider": None, "engine_version": torch.__version__}

    def compile(self):
        """Compiles the model and runs it once: the compilation happens here, or the cell
        is unsupported with why."""
        eager = self.model
        try:
            self.model = torch.compile(eager)
            self.forward(self.inputs)
        except protocol.OutOfMemory:
            raise
        except Exception as e:  # inductor's failures have no common base class
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise protocol.Unsupported(f"torch.compile does not work here: {first}") from e

    def synthetic_inputs(self, cell):
        g = torch.Generator().manual_seed(int(cell["seed"]))
        config = self.model.config
        if self.family == "bert":
            ids = torch.randint(0, config.vocab_size, (cell["batch"], cell["seq_len"]), generator=g)
            return {"input_ids": ids.to(self.device), "attention_mask": torch.ones_like(ids).to(self.device)}
        size = config.image_size
        pixels = torch.randn((cell["batch"], 3, size, size), generator=g).to(self.dtype)
        return {"pixel_values": pixels.to(self.device)}

    def synchronize(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        elif self.device.type == "mps":
            torch.mps.synchronize()

    def forward(self, inputs):
        try:
            with torch.inference_mode():
                return self.model(**inputs)
        except torch.OutOfMemoryError as e:
            raise protocol.OutOfMemory(str(e)) from e

    def run_once(self):
        self.synchronize()
        start = time.perf_counter()
        self.forward(self.inputs)
        self.synchronize()
        return time.perf_counter() - start

    def outputs(self, inputs_path, outputs_path):
        from safetensors.torch import load_file, save_file
        given = load_file(inputs_path)
        inputs = {k: v.to(self.device) for k, v in given.items()}
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        out = self.forward(inputs)
        name, tensor = ("hidden_states", out.last_hidden_state) if self.family == "bert" else ("logits", out.logits)
        save_file({name: tensor.float().cpu().contiguous()}, outputs_path)


def main():
    compile_model = "--compile" in sys.argv[1:]
    hello = {
        "runner": "accelbench-torch",
        "engine": "torch-compile" if compile_model else "torch",
        "engine_version": torch.__version__,
        "devices": devices(),
        "precisions": sorted(DTYPES),
        "modes": ["inference"],
        "families": FAMILIES,
    }
    return protocol.serve(hello, TorchRunner(compile_model))


if __name__ == "__main__":
    sys.exit(main())
