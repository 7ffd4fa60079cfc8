"""llama.cpp's side of the vs_llamacpp output check: the logits after a prompt of token
ids and the tokens greedy decoding picks next, for a GGUF file, through llama.cpp's own
library (the llama-cpp-python bindings of the same sdist that `setup_llamacpp.sh`
builds llama.cpp from; `LLAMA_CPP_LIB_PATH` points them at that build).

    python llamacpp_greedy.py FILE IDS STEPS THREADS   (IDS: comma-separated)

Prints one JSON object: {"logits": [...], "tokens": [...]}.
"""
import json
import sys

import numpy as np
from llama_cpp import Llama


def main() -> None:
    path, ids, steps, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    prompt = [int(t) for t in ids.split(",")]
    llm = Llama(
        model_path=path,
        n_ctx=len(prompt) + steps + 1,
        n_batch=len(prompt),
        n_threads=threads,
        logits_all=True,
        verbose=False,
    )
    llm.eval(prompt)
    first = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
    logits, tokens = first, []
    for _ in range(steps):
        token = int(np.argmax(logits))
        tokens.append(token)
        llm.eval([token])
        logits = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
    print(json.dumps({"logits": first.tolist(), "tokens": tokens}))


if __name__ == "__main__":
    main()
