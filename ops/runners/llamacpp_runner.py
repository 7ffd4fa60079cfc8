#!/usr/bin/env python3
"""accelbench's llama.cpp runner (docs/RUNNERS.md): a GGUF decoder (the agent's seeded
model written as GGUF, or a real file) through llama.cpp's own library, via the
llama-cpp-python bindings of the sdist that ops/bench/setup_llamacpp.sh builds
llama.cpp from. An iteration is timed the way candle's decoder cells are: prefill up to
the first token's logits, then `decode_steps` steps, each picking the greedy token and
running the model on it; the runner reports all of them (TTFT, inter-token times).
Batch 1, the CPU (and a GPU where the library was built with offload).
Install: ops/runners/install-llamacpp.sh.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import accelbench_runner as protocol  # noqa: E402

# The library built by setup_llamacpp.sh, unless the environment names another.
_root = os.environ.get("ACCELBENCH_LLAMACPP", os.path.join(os.path.expanduser("~"), ".cache", "accelbench-llamacpp"))
os.environ.setdefault("LLAMA_CPP_LIB_PATH", os.path.join(_root, "llama.cpp", "build", "bin"))

import numpy as np  # noqa: E402
import llama_cpp  # noqa: E402

FAMILIES = ["llama", "qwen2"]
PRECISIONS = ["q8_0", "q4_0", "q4_1"]


def threads():
    """The CPU threads a cell may use: the agent's limit, else this process's CPUs."""
    limit = os.environ.get("RAYON_NUM_THREADS")
    if limit and limit.isdigit() and int(limit) > 0:
        return int(limit)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def devices():
    found = [{"device": "cpu", "name": protocol.cpu_name()}]
    if llama_cpp.llama_supports_gpu_offload():
        found.append({"device": "cuda:0", "name": "GPU 0 (llama.cpp offload)"})
    return found


class LlamaCppRunner:
    def load(self, cell):
        for key, allowed in (("family", FAMILIES), ("precision", PRECISIONS), ("mode", ["inference"])):
            if cell[key] not in allowed:
                raise protocol.Unsupported(f"the llamacpp runner runs {key} {allowed}, not {cell[key]!r}")
        if int(cell["batch"]) != 1:
            raise protocol.Unsupported("the llamacpp runner runs batch 1 (one sequence) only")
        present = {d["device"] for d in devices()}
        if cell["device"] not in present:
            raise protocol.Unsupported(f"device {cell['device']!r} is not available to llama.cpp here (it has {sorted(present)})")
        path = cell["weights"]
        if not path.endswith(".gguf") or not os.path.isfile(path):
            raise protocol.Unsupported(f"{path} is not a .gguf file")
        self.steps = int(cell.get("decode_steps") or 0)
        self.prompt_len = int(cell["seq_len"])
        self.llm = llama_cpp.Llama(
            model_path=path,
            n_ctx=self.prompt_len + max(self.steps, 8) + 1,
            n_batch=self.prompt_len,
            n_threads=threads(),
            n_gpu_layers=-1 if cell["device"] != "cpu" else 0,
            logits_all=False,
            verbose=False,
        )
        rng = np.random.default_rng(int(cell["seed"]))
        self.prompt = [int(t) for t in rng.integers(0, self.llm.n_vocab(), size=self.prompt_len)]
        return {"device": cell["device"], "execution_provider": None, "engine_version": f"llama-cpp-python {llama_cpp.__version__}"}

    def logits(self):
        # The last evaluated token's logits, straight from llama.cpp's context (the
        # bindings keep a copy only with logits_all, which would make the prefill compute
        # every position's logits, work candle's cells do not do).
        return np.ctypeslib.as_array(self.llm._ctx.get_logits(), shape=(self.llm.n_vocab(),))

    def greedy(self):
        return int(np.argmax(self.logits()))

    def run_once(self):
        self.llm.reset()
        start = time.perf_counter()
        self.llm.eval(self.prompt)
        first = time.perf_counter() - start
        steps = []
        for _ in range(self.steps):
            t = time.perf_counter()
            self.llm.eval([self.greedy()])
            steps.append(time.perf_counter() - t)
        return {"seconds": time.perf_counter() - start, "first_token_seconds": first, "token_seconds": steps}

    def outputs(self, inputs_path, outputs_path):
        from safetensors.numpy import load_file, save_file

        prompt = [int(t) for t in load_file(inputs_path)["input_ids"].reshape(-1)]
        self.llm.reset()
        self.llm.eval(prompt)
        first = self.logits().copy()
        tokens = []
        for _ in range(max(self.steps, 8)):
            tokens.append(self.greedy())
            self.llm.eval([tokens[-1]])
        save_file({"logits": first.astype(np.float32), "tokens": np.array(tokens, dtype=np.int64)}, outputs_path)


def main():
    hello = {
        "runner": "accelbench-llamacpp",
        "engine": "llamacpp",
        "engine_version": f"llama-cpp-python {llama_cpp.__version__}",
        "devices": devices(),
        "precisions": PRECISIONS,
        "modes": ["inference"],
        "families": FAMILIES,
    }
    return protocol.serve(hello, LlamaCppRunner())


if __name__ == "__main__":
    sys.exit(main())
