#!/usr/bin/env python3
"""accelbench's OpenVINO runner (docs/RUNNERS.md): the cell's model exported to ONNX from
the same weights folder the other engines load (onnx_export.py), read and compiled by
OpenVINO for its CPU plugin (`cpu`; an Intel GPU or NPU shows up as `gpu.N`/`npu` where
its plugin is installed). The inference precision is set to the cell's, never left to
OpenVINO's default (which is bf16 on CPUs that have it): fp32, or bf16 where the CPU
plugin says it can. Install: ops/runners/install-openvino.sh.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import accelbench_runner as protocol  # noqa: E402
import onnx_export  # noqa: E402

import openvino as ov  # noqa: E402

HINTS = {"fp32": ov.Type.f32, "bf16": ov.Type.bf16}


def agent_name(ov_device):
    """OpenVINO's device names in the agent's notation: CPU -> cpu, GPU.1 -> gpu.1."""
    return "cpu" if ov_device == "CPU" else ov_device.lower()


def devices(core):
    return [
        {"device": agent_name(d), "name": core.get_property(d, "FULL_DEVICE_NAME"), "execution_providers": [d]}
        for d in core.available_devices
    ]


class OpenVinoRunner:
    def __init__(self, core):
        self.core = core

    def load(self, cell):
        precision = cell["precision"]
        if precision not in HINTS:
            raise protocol.Unsupported(f"the openvino runner runs {sorted(HINTS)}, not {precision!r}")
        if cell["mode"] != "inference":
            raise protocol.Unsupported(f"the openvino runner runs inference only, not {cell['mode']!r}")
        by_name = {agent_name(d): d for d in self.core.available_devices}
        target = by_name.get(cell["device"])
        if target is None:
            raise protocol.Unsupported(f"no OpenVINO device {cell['device']!r} here (it has {sorted(by_name)})")
        if precision == "bf16" and "BF16" not in self.core.get_property(target, "OPTIMIZATION_CAPABILITIES"):
            raise protocol.Unsupported(f"OpenVINO's {target} plugin has no bf16 on this machine")
        model = self.core.read_model(onnx_export.exported(cell))
        self.compiled = self.core.compile_model(model, target, {"INFERENCE_PRECISION_HINT": HINTS[precision]})
        ran = self.compiled.get_property("INFERENCE_PRECISION_HINT")
        if ran != HINTS[precision]:
            raise protocol.Unsupported(f"OpenVINO would infer in {ran}, not {HINTS[precision]}")
        self.request = self.compiled.create_infer_request()
        self.family = cell["family"]
        self.inputs = onnx_export.synthetic_inputs(cell, onnx_export.read_config(cell["weights"]))
        return {"device": cell["device"], "execution_provider": target, "engine_version": ov.get_version()}

    def run_once(self):
        start = time.perf_counter()
        self.request.infer(self.inputs)
        return time.perf_counter() - start

    def outputs(self, inputs_path, outputs_path):
        result = self.request.infer(onnx_export.load_inputs(inputs_path))
        onnx_export.save_outputs(outputs_path, self.family, result[self.compiled.output(0)])


def main():
    core = ov.Core()
    hello = {
        "runner": "accelbench-openvino",
        "engine": "openvino",
        "engine_version": ov.get_version(),
        "devices": devices(core),
        "precisions": sorted(HINTS),
        "modes": ["inference"],
        "families": onnx_export.FAMILIES,
    }
    return protocol.serve(hello, OpenVinoRunner(core))


if __name__ == "__main__":
    sys.exit(main())
