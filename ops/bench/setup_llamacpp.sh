#!/usr/bin/env bash
# Setup step of the candle-vs-llama.cpp bench: builds llama.cpp's `llama-bench` from the
# llama.cpp sources vendored in the PyPI sdist of llama-cpp-python (PyPI is the only
# source this needs), with cmake from PyPI too, outside the clone so it is reused.
# Also puts llama-cpp-python's bindings (same sdist) into that venv, over the same build.
# Prints the path of llama-bench. Takes ~10 minutes on 2 cores the first time.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="$(bash "$here/setup_torch.sh")"
venv="$(dirname "$(dirname "$python")")"
root="${ACCELBENCH_LLAMACPP:-$HOME/.cache/accelbench-llamacpp}"
version="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
bench="$root/llama.cpp/build/bin/llama-bench"
if [ ! -x "$bench" ]; then
    mkdir -p "$root"
    "$venv/bin/pip" install -q cmake scikit-build-core >&2
    if [ ! -d "$root/llama.cpp" ]; then
        (cd "$root" && "$venv/bin/pip" download -q --no-deps --no-build-isolation \
            --no-binary llama-cpp-python "llama-cpp-python==$version" >&2)
        tar -xzf "$root/llama_cpp_python-$version.tar.gz" -C "$root"
        mv "$root/llama_cpp_python-$version/vendor/llama.cpp" "$root/llama.cpp"
    fi
    PATH="$venv/bin:$PATH" cmake -S "$root/llama.cpp" -B "$root/llama.cpp/build" -DCMAKE_BUILD_TYPE=Release \
        -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DGGML_NATIVE=ON >&2
    PATH="$venv/bin:$PATH" cmake --build "$root/llama.cpp/build" -j"$(nproc)" --target llama-bench >&2
fi
# The bindings of the same sdist, for the output check (`llamacpp_greedy.py`): its pure
# Python package copied into the venv, loading the library built above through
# LLAMA_CPP_LIB_PATH (no second build).
site="$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
if [ ! -d "$site/llama_cpp" ]; then
    if [ ! -f "$root/llama_cpp_python-$version.tar.gz" ]; then
        (cd "$root" && "$venv/bin/pip" download -q --no-deps --no-build-isolation \
            --no-binary llama-cpp-python "llama-cpp-python==$version" >&2)
    fi
    tar -xzf "$root/llama_cpp_python-$version.tar.gz" -C "$site" --strip-components=1 \
        "llama_cpp_python-$version/llama_cpp"
    "$venv/bin/pip" install -q numpy diskcache jinja2 typing-extensions >&2
fi
echo "$bench"
