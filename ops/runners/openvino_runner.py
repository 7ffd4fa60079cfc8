#!/usr/bin/env python3
"""accelbench's OpenVINO runner (docs/RUNNERS.md): the cell's model exported to ONNX from
the same weights folder the other engines load (onnx_export.py), read and compiled by
OpenVINO for its CPU plugin (`cpu`), or an Intel GPU (`xpu:N`) or NPU (`npu:0`) where its
plugin and driver are installed (untried here: no such device). The inference precision is set to the cell's, never left to
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


def pci_address(core, ov_device):
    """A GPU's PCI address as a sortable tuple, or None where OpenVINO does not say it."""
    try:
        info = core.get_property(ov_device, "DEVICE_PCI_INFO")
        return tuple(int(getattr(info, part)) for part in ("domain", "bus", "device", "function"))
    except Exception:  # an older OpenVINO, or a plugin without the property
        return None


def agent_names(core):
    """OpenVINO's devices in the agent's notation: CPU -> cpu, the Intel GPUs -> xpu:N, the
    NPU -> npu:0. The agent numbers Intel GPUs in PCI address order (agent/src/detect/intel.rs),
    so several GPUs are named only when OpenVINO gives every one's address; one GPU needs none.
    Devices left out are simply not offered."""
    names = {}
    gpus = [d for d in core.available_devices if d.split(".")[0] == "GPU"]
    addresses = {d: pci_address(core, d) for d in gpus}
    if len(gpus) == 1 or all(addresses.values()):
        for i, d in enumerate(sorted(gpus, key=lambda d: addresses[d] or ())):
            names[d] = f"xpu:{i}"
    elif gpus:
        print(f"{len(gpus)} GPUs without PCI addresses from OpenVINO: not offered (their order is unknown)", file=sys.stderr)
    for d in core.available_devices:
        if d == "CPU":
            names[d] = "cpu"
        elif d == "NPU":
            names[d] = "npu:0"
    return names


def devices(core):
    return [
        {"device": name, "name": core.get_property(d, "FULL_DEVICE_NAME"), "execution_providers": [d]}
        for d, name in agent_names(core).items()
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
        by_name = {name: d for d, name in agent_names(self.core).items()}
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
