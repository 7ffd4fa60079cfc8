#!/usr/bin/env python3
"""Times one model in PyTorch eager mode (Hugging Face transformers, random weights from
the published config, no download), the same shapes and loop as accelbench's candle
engine, and prints one JSON line: {"engine": "torch", "samples_ns": [...], ...}.

Used by `cargo run -p agent --example vs_torch`; run by hand with
    python3 ops/bench/torch_runner.py --model bert-base-uncased --batch 1 --seq 128

For the bench's output check, two more modes share the weights with accelbench:
    --save-weights DIR  writes the seeded model as DIR/config.json + DIR/model.safetensors
                        (Hugging Face's layout, which accelbench loads with --weights DIR)
    --outputs DIR       loads DIR's weights and DIR/inputs.safetensors (written by the
                        bench: the inputs accelbench ran), runs one forward pass and
                        writes DIR/outputs.safetensors ("output": BERT's last hidden
                        state, ViT's logits)
"""
import argparse
import json
import time

import torch
from safetensors.torch import load_file, save_file
from transformers import BertConfig, BertModel, ViTConfig, ViTForImageClassification

# The published configs' architecture numbers (as in accelbench's catalog).
CONFIGS = {
    "bert-base-uncased": lambda: BertModel(BertConfig(), add_pooling_layer=True),
    "all-MiniLM-L6-v2": lambda: BertModel(BertConfig(hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                                                     intermediate_size=1536), add_pooling_layer=True),
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
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--save-weights", metavar="DIR")
    p.add_argument("--outputs", metavar="DIR")
    args = p.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    model = CONFIGS[args.model]().eval()
    if args.save_weights:
        model.save_pretrained(args.save_weights, safe_serialization=True)
        return
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    if args.outputs:
        write_outputs(args.model, args.outputs, dtype)
        return
    model = model.to(dtype)
    if args.model.startswith("vit"):
        inputs = {"pixel_values": torch.randn(args.batch, 3, 224, 224, dtype=dtype)}
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


def write_outputs(name: str, folder: str, dtype: torch.dtype) -> None:
    cls = ViTForImageClassification if name.startswith("vit") else BertModel
    model = cls.from_pretrained(folder).eval().to(dtype)
    inputs = load_file(f"{folder}/inputs.safetensors")
    with torch.inference_mode():
        if name.startswith("vit"):
            out = model(pixel_values=inputs["pixel_values"].to(dtype)).logits
        else:
            ids = inputs["input_ids"].to(torch.int64)
            out = model(input_ids=ids, token_type_ids=torch.zeros_like(ids)).last_hidden_state
    save_file({"output": out.float().contiguous()}, f"{folder}/outputs.safetensors")


if __name__ == "__main__":
    main()
