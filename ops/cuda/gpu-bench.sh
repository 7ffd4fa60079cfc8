#!/usr/bin/env bash
# Runs a carried cuda build of accelbench-agent on a GPU machine and writes what it
# printed to $OUT (default ./gpu-out): detect, the inference matrix, the quantized
# decoders, one training cell. Usage: gpu-bench.sh BINARY (or BINARY.xz)
set -u
BIN_SRC=${1:?usage: gpu-bench.sh BINARY}
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
LOG=$OUT/run.log
echo "RUST_BACKTRACE=${RUST_BACKTRACE-unset}" | tee -a "$LOG"
unset RUST_BACKTRACE
BIN=/tmp/accelbench-agent
case "$BIN_SRC" in
  *.xz) xz -dc "$BIN_SRC" > "$BIN" 2>/dev/null ||
        python3 -c 'import lzma,sys; open(sys.argv[2],"wb").write(lzma.open(sys.argv[1]).read())' "$BIN_SRC" "$BIN" ;;
  *) cp "$BIN_SRC" "$BIN" ;;
esac
chmod +x "$BIN" || exit 1
# The cuda build links libcuda.so.1, libcudart.so.13, libcublas(Lt).so.13,
# libcurand.so.10 and libnvrtc.so.13 dynamically: find them (toolkit or pip wheels).
dirs=""
for lib in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libnvrtc.so.13; do
  d=$(find /usr/local/cuda/ /usr/local/cuda*/targets /opt /usr/lib /usr/local/lib -name "$lib" -print -quit 2>/dev/null | xargs -r dirname)
  [ -n "$d" ] && case ":$dirs:" in *":$d:"*) ;; *) dirs="$dirs:$d";; esac
done
export LD_LIBRARY_PATH="${dirs#:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
{
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  date -u +%Y-%m-%dT%H:%M:%SZ
  nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap,power.limit --format=csv
  ldd "$BIN" | grep -E "cuda|cublas|curand|nvrtc|not found"
} 2>&1 | tee -a "$LOG"
"$BIN" detect > "$OUT/detect.txt" 2>&1; echo "detect rc=$?" | tee -a "$LOG"
M="--max-seconds 5 --min-seconds 1"
run() { # name timeout args...
  local name=$1 t=$2; shift 2
  local s=$(date +%s)
  echo "== $name: $*" | tee -a "$LOG"
  timeout -k 5 "$t" "$BIN" bench --device cuda:0 $M --out "$OUT/$name.jsonl" "$@" 2>&1 | tee -a "$LOG"
  echo "== $name rc=${PIPESTATUS[0]} in $(( $(date +%s) - s )) s" | tee -a "$LOG"
}
run enc 90 --model bert-base-uncased,vit-base-patch16-224 --batch 1,8 --precision fp32,fp16,bf16
run dec 320 --model Qwen2-0.5B,TinyLlama-1.1B --batch 1,8 --precision fp32,fp16,bf16
run quant 130 --model Qwen2-0.5B,TinyLlama-1.1B --batch 1 --precision q8_0,q4_0
run train 45 --model bert-base-uncased --batch 8 --precision fp32 --mode training
cat "$OUT"/enc.jsonl "$OUT"/dec.jsonl "$OUT"/quant.jsonl "$OUT"/train.jsonl > "$OUT/gpu.jsonl" 2>/dev/null
echo "done" | tee -a "$LOG"
