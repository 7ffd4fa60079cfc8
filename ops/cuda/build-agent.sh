#!/usr/bin/env bash
# Builds accelbench-agent with the cuda feature on a machine with no CUDA toolkit and no
# GPU, from NVIDIA's PyPI wheels, and writes a stripped, xz-compressed copy to carry to a
# GPU machine. See ops/cuda/README.md. Usage: ops/cuda/build-agent.sh [OUTDIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
OUTDIR=${1:-$PWD/.cuda-carry}
VENV=${CUDA_VENV:-/tmp/cuda-venv}
ROOT=${CUDA_STUB_ROOT:-/tmp/cuda-root}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/accelbench-target-cuda}
# sm_90 = H100 / H200. candle-kernels compiles PTX for sm_90a (runs on 9.0 only).
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}

# 1. CUDA 13.0 from wheels: nvcc 13.0 writes PTX ISA 9.0, which a 580 driver (CUDA 13.0)
#    loads; a newer nvcc writes PTX that driver refuses.
if [ ! -x "$VENV/bin/pip" ]; then python3 -m venv "$VENV"; fi
"$VENV/bin/pip" install -q "nvidia-cuda-nvcc==13.0.*" "nvidia-cuda-crt==13.0.*" "nvidia-nvvm==13.0.*" \
  "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-cccl==13.0.*" "nvidia-cuda-nvrtc==13.0.*" \
  "nvidia-curand==10.4.0.*" "nvidia-cublas==13.0.*"
CU=$("$VENV/bin/python" -c 'import os, nvidia; print(os.path.join(list(nvidia.__path__)[0], "cu13"))')

# 2. A toolkit-shaped folder to link against: unversioned names for the wheels' libraries
#    and a stub libcuda.so.1 (the driver's library, absent here) with every driver
#    function cudarc declares. The binary finds the real ones on the GPU machine.
rm -rf "$ROOT" && mkdir -p "$ROOT/lib"
ln -s "$CU/bin" "$ROOT/bin"; ln -s "$CU/include" "$ROOT/include"; ln -s "$CU/nvvm" "$ROOT/nvvm"
for l in cudart.so.13 cublas.so.13 cublasLt.so.13 curand.so.10 nvrtc.so.13; do
  ln -s "$CU/lib/lib$l" "$ROOT/lib/lib${l%%.so*}.so"
done
SYS=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.*/src/driver/sys/mod.rs | tail -1)
grep -oP '^pub unsafe fn \Kcu\w+' "$SYS" | sort -u | sed 's/.*/int &(void) { return 999; }/' > "$ROOT/libcuda_stub.c"
cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$ROOT/lib/libcuda.so" "$ROOT/libcuda_stub.c"
ln -s libcuda.so "$ROOT/lib/libcuda.so.1"

# 3. Build. cudarc (dynamic-linking) searches $CUDA_HOME/lib; cudaforge runs $NVCC.
export CUDA_HOME=$ROOT CUDA_PATH=$ROOT CUDA_ROOT=$ROOT NVCC=$CU/bin/nvcc
export PATH=$CU/bin:$PATH LD_LIBRARY_PATH=$ROOT/lib:$CU/lib
cargo build -p agent --features cuda --bin accelbench-agent

# 4. Strip and compress (the device tool carries at most 64 MiB; ~68 MB stripped, ~8 MB xz).
mkdir -p "$OUTDIR"
strip -o "$OUTDIR/accelbench-agent" "$CARGO_TARGET_DIR/debug/accelbench-agent"
xz -T0 -6 -f "$OUTDIR/accelbench-agent"
cp ops/cuda/gpu-bench.sh "$OUTDIR/"
ls -la "$OUTDIR"
