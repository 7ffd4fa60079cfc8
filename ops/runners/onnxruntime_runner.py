#!/usr/bin/env python3
"""accelbench's ONNX Runtime runner (docs/RUNNERS.md): the cell's model exported to ONNX
from the same weights folder the other engines load (onnx_export.py), run by ONNX
Runtime with the execution provider the cell's device calls for: CPUExecutionProvider
on `cpu`; CUDAExecutionProvider on `cuda:N` where the installed onnxruntime has it
(onnxruntime-gpu); QNNExecutionProvider on `qnn:N` (a Snapdragon's NPU, through the HTP
backend) where the installed onnxruntime has it (onnxruntime-qnn). With `--provider
openvino` it is the engine `onnxruntime-openvino`: OpenVINOExecutionProvider on `cpu`
(the onnxruntime-openvino package; install-onnxruntime-openvino.sh). The
provider that really runs is the one ONNX Runtime reports for the session; a cell whose
provider is not there is `unsupported`, never run on another. fp32 only (the export is
fp32). Install: ops/runners/install-onnxruntime.sh.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import accelbench_runner as protocol  # noqa: E402
import onnx_export  # noqa: E402

import onnxruntime as ort  # noqa: E402

OPENVINO_EP = sys.argv[1:] == ["--provider", "openvino"]
if OPENVINO_EP:
    ENGINE, PROVIDER_OF = "onnxruntime-openvino", {"cpu": "OpenVINOExecutionProvider"}
else:
    ENGINE = "onnxruntime"
    PROVIDER_OF = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "qnn": "QNNExecutionProvider"}
# The QNN backend library that runs on the Hexagon NPU, as the QNN SDK names it.
QNN_HTP = "QnnHtp.dll" if sys.platform == "win32" else "libQnnHtp.so"


def devices():
    available = ort.get_available_providers()
    if OPENVINO_EP:
        present = "OpenVINOExecutionProvider" in available
        return [{"device": "cpu", "name": protocol.cpu_name(), "execution_providers": ["OpenVINOExecutionProvider"]}] if present else []
    found = [{"device": "cpu", "name": protocol.cpu_name(), "execution_providers": [p for p in available if p == "CPUExecutionProvider"]}]
    if "CUDAExecutionProvider" in available:
        found.append({"device": "cuda:0", "name": "CUDA device 0", "execution_providers": ["CUDAExecutionProvider"]})
    if "QNNExecutionProvider" in available:
        found.append({"device": "qnn:0", "name": "Qualcomm NPU (QNN HTP)", "execution_providers": ["QNNExecutionProvider"]})
    return found


def provider_options(kind, index):
    if OPENVINO_EP:
        # The export's fp32, never OpenVINO's own choice (bf16 on CPUs that have it).
        return {"device_type": "CPU", "precision": "FP32"}
    if kind == "cuda":
        return {"device_id": int(index or 0)}
    if kind == "qnn":
        return {"backend_path": QNN_HTP}
    return {}


class OrtRunner:
    def load(self, cell):
        if cell["precision"] != "fp32":
            raise protocol.Unsupported(f"the onnxruntime runner runs the fp32 export only, not {cell['precision']!r}")
        if cell["mode"] != "inference":
            raise protocol.Unsupported(f"the onnxruntime runner runs inference only, not {cell['mode']!r}")
        device = cell["device"]
        kind, _, index = device.partition(":")
        provider = PROVIDER_OF.get(kind)
        if provider is None or provider not in ort.get_available_providers():
            raise protocol.Unsupported(f"no ONNX Runtime execution provider for {device!r} here (it has {ort.get_available_providers()})")
        options = [provider_options(kind, index)]
        path = onnx_export.exported(cell)
        self.session = ort.InferenceSession(path, providers=[provider], provider_options=options)
        ran = self.session.get_providers()[0]
        if ran != provider:
            raise protocol.Unsupported(f"ONNX Runtime would run {ran}, not {provider}")
        self.family = cell["family"]
        self.inputs = onnx_export.synthetic_inputs(cell, onnx_export.read_config(cell["weights"]))
        return {"device": device, "execution_provider": ran, "engine_version": ort.__version__}

    def run_once(self):
        start = time.perf_counter()
        self.session.run(None, self.inputs)
        return time.perf_counter() - start

    def outputs(self, inputs_path, outputs_path):
        (out,) = self.session.run(None, onnx_export.load_inputs(inputs_path))
        onnx_export.save_outputs(outputs_path, self.family, out)


def main():
    hello = {
        "runner": "accelbench-onnxruntime",
        "engine": ENGINE,
        "engine_version": ort.__version__,
        "devices": devices(),
        "precisions": ["fp32"],
        "modes": ["inference"],
        "families": onnx_export.FAMILIES,
    }
    return protocol.serve(hello, OrtRunner())


if __name__ == "__main__":
    sys.exit(main())
