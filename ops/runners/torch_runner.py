#!/usr/bin/env python3
"""accelbench's PyTorch runner (docs/RUNNERS.md): PyTorch through Hugging Face
transformers, on the CPU, CUDA, ROCm (a ROCm build of torch, through the same code),
Apple's MPS or an Intel GPU (torch's XPU build; untried here, no such device). One cell per process; the agent starts it and speaks the protocol.

Decoders (llama, qwen2) are timed the way candle's decoder cells are: a prefill of the
prompt to the first token's logits, then `decode_steps` greedy steps on the KV cache,
each reported. Eager by default (engine `torch`); with `--compile` the model goes through
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

# Intel GPUs in PCI address order, the order the agent numbers them xpu:N in
# (agent/src/detect/intel.rs); Level Zero's own order may differ. Set before torch loads.
os.environ["ZE_ENABLE_PCI_ID_DEVICE_ORDER"] = "1"
import torch  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
FAMILIES = ["bert", "vit", "llama", "qwen2"]
DECODERS = ["llama", "qwen2"]
# Greedy tokens the outputs carry at least (the agent checks the first 8).
GREEDY_TOKENS = 8


def devices():
    found = [{"device": "cpu", "name": protocol.cpu_name()}]
    if torch.cuda.is_available():
        # A ROCm build of torch answers through torch.cuda; the agent calls those rocm:N.
        kind = "rocm" if torch.version.hip else "cuda"
        for i in range(torch.cuda.device_count()):
            found.append({"device": f"{kind}:{i}", "name": torch.cuda.get_device_name(i)})
    # An Intel GPU through torch's XPU build (in PCI order: see the top).
    if getattr(torch, "xpu", None) is not None and torch.xpu.is_available():
        for i in range(torch.xpu.device_count()):
            found.append({"device": f"xpu:{i}", "name": torch.xpu.get_device_name(i)})
    # Apple's GPU through MPS: the fingerprint's metal:0.
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append({"device": "metal:0", "name": "Apple MPS"})
    return found


def torch_device(name):
    """The torch device for the agent's device name, or Unsupported if absent here."""
    present = {d["device"] for d in devices()}
    if name not in present:
        raise protocol.Unsupported(f"device {name!r} is not available to torch here (it has {sorted(present)})")
    if name == "cpu":
        return torch.device("cpu")
    kind, index = name.split(":")
    if kind == "metal":
        return torch.device("mps")
    # rocm:N is torch.cuda's device N on a ROCm build.
    return torch.device("xpu" if kind == "xpu" else "cuda", int(index))


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
        if self.compile_model and family in DECODERS:
            raise protocol.Unsupported("torch-compile runs bert and vit; a decoder's growing KV cache recompiles it")
        self.device = torch_device(cell["device"])
        self.family = family
        self.dtype = DTYPES[precision]
        import transformers
        transformers.logging.set_verbosity_error()
        auto = {
            "bert": transformers.AutoModel,
            "vit": transformers.AutoModelForImageClassification,
        }.get(family, transformers.AutoModelForCausalLM)
        self.steps = int(cell.get("decode_steps") or 0)
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
        if self.family in DECODERS:
            ids = torch.randint(0, config.vocab_size, (cell["batch"], cell["seq_len"]), generator=g)
            return {"input_ids": ids.to(self.device)}
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
        elif self.device.type == "xpu":
            torch.xpu.synchronize(self.device)

    def forward(self, inputs):
        try:
            with torch.inference_mode():
                return self.model(**inputs)
        except torch.OutOfMemoryError as e:
            raise protocol.OutOfMemory(str(e)) from e

    def last_logits(self, **inputs):
        """The model on `inputs` with its KV cache: last position's logits, the cache."""
        # Only the last position's logits, as candle's decoders compute.
        out = self.forward(dict(inputs, use_cache=True, logits_to_keep=1))
        return out.logits[:, -1, :], out.past_key_values

    def generate(self, ids, steps):
        """Prefill, then `steps` greedy tokens: the first logits, the tokens, the times."""
        self.synchronize()
        start = time.perf_counter()
        logits, past = self.last_logits(input_ids=ids)
        self.synchronize()
        first_token, first_logits = time.perf_counter() - start, logits
        tokens, times = [], []
        for _ in range(steps):
            step = time.perf_counter()
            token = logits.argmax(dim=-1, keepdim=True)
            tokens.append(token)
            logits, past = self.last_logits(input_ids=token, past_key_values=past)
            self.synchronize()
            times.append(time.perf_counter() - step)
        return first_logits, tokens, {"seconds": time.perf_counter() - start, "first_token_seconds": first_token, "token_seconds": times}

    def run_once(self):
        if self.family in DECODERS:
            return self.generate(self.inputs["input_ids"], self.steps)[2]
        self.synchronize()
        start = time.perf_counter()
        self.forward(self.inputs)
        self.synchronize()
        return time.perf_counter() - start

    def outputs(self, inputs_path, outputs_path):
        from safetensors.torch import load_file, save_file
        given = load_file(inputs_path)
        inputs = {k: v.to(self.device) for k, v in given.items()}
        if self.family in DECODERS:
            logits, tokens, _ = self.generate(inputs["input_ids"], max(self.steps, GREEDY_TOKENS))
            picked = torch.cat(tokens, dim=-1)[0] if tokens else torch.zeros(0, dtype=torch.int64)
            save_file({"logits": logits[0].float().cpu().contiguous(), "tokens": picked.to(torch.int64).cpu().contiguous()}, outputs_path)
            return
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
