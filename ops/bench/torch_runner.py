#!/usr/bin/env python3
"""Times one model in PyTorch eager mode (Hugging Face transformers, random weights from
the published config, no download), the same shapes and loop as accelbench's candle
engine, and prints one JSON line: {"engine": "torch", "samples_ns": [...], ...}.

Used by `cargo run -p agent --example vs_torch`; run by hand with
    python3 ops/bench/torch_runner.py --model bert-base-uncased --batch 1 --seq 128
"""
import argparse
import json
import time

import torch
from transformers import BertConfig, BertModel, ViTConfig, ViTForImageClassification

# The published configs' architecture numbers (as in accelbench's catalog).
CONFIGS = {
    "bert-base-uncased": lambda: BertModel(BertConfig(), add_pooling_layer=True),
    "bert-tiny": lambda: BertModel(BertConfig(hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                                              intermediate_size=512)),
    "vit-base-patch16-224": lambda: ViTForImageClassification(ViTConfig(num_labels=1000)),
}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True, choices=sorted(CONFIGS))
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--min-iterations", type=int, default=10)
    p.add_argument("--min-seconds", type=float, default=2.0)
    args = p.parse_args()

    torch.manual_seed(0)
    model = CONFIGS[args.model]().eval()
    if args.model.startswith("vit"):
        inputs = {"pixel_values": torch.randn(args.batch, 3, 224, 224)}
    else:
        ids = torch.randint(0, model.config.vocab_size, (args.batch, args.seq))
        inputs = {"input_ids": ids, "token_type_ids": torch.zeros_like(ids)}

    samples = []
    with torch.inference_mode():
        for _ in range(args.warmup):
            model(**inputs)
        start = time.perf_counter()
        while len(samples) < args.min_iterations or time.perf_counter() - start < args.min_seconds:
            t0 = time.perf_counter_ns()
            model(**inputs)
            samples.append(time.perf_counter_ns() - t0)
    print(json.dumps({
        "engine": "torch",
        "version": torch.__version__,
        "threads": torch.get_num_threads(),
        "samples_ns": samples,
    }))


if __name__ == "__main__":
    main()
