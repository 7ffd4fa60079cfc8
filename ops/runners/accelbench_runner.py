"""The runner side of accelbench's runner protocol, version 1 (docs/RUNNERS.md), for
runners written in Python: JSON lines on stdin/stdout, one cell per process.

A runner gives `serve` its hello and an object with `load(cell) -> dict` (what it
really built: device, execution_provider, engine_version), `run_once() -> float`
(seconds of one iteration, timed around the work and the device's synchronisation; a
generative runner returns {"seconds", "first_token_seconds", "token_seconds"}) and
optionally `outputs(inputs_path, outputs_path)`. Everything else (the conversation,
errors as structured events, keeping stdout for the protocol) lives here.
"""
import json
import sys
import traceback

PROTOCOL = 1


class Unsupported(Exception):
    """The runner cannot run this cell for real here; the message says why."""


class OutOfMemory(Exception):
    """The engine ran out of device memory."""


def cpu_name():
    """The CPU's model name, for a runner's hello."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "cpu"


def _send(out, message):
    out.write(json.dumps(message) + "\n")
    out.flush()


def _error(out, kind, message):
    _send(out, {"type": "error", "kind": kind, "message": message})


def serve(hello, runner):
    """Speaks the protocol on this process's stdin and stdout until `end` or EOF.

    Library chatter printed to stdout would corrupt the protocol, so `print` and friends
    go to stderr while the runner works; protocol lines use the real stdout.
    """
    out = sys.stdout
    sys.stdout = sys.stderr
    _send(out, dict({"type": "hello", "protocol": PROTOCOL}, **hello))
    loaded = False
    for line in sys.stdin:
        try:
            message = json.loads(line)
            kind = message.get("type")
        except (ValueError, AttributeError) as e:
            _error(out, "failed", f"not a protocol line ({e}): {line[:200]!r}")
            return 1
        try:
            if kind == "load":
                if message.get("protocol") != PROTOCOL:
                    raise Unsupported(f"the agent speaks protocol {message.get('protocol')}; this runner {PROTOCOL}")
                _send(out, dict({"type": "loaded"}, **runner.load(message)))
                loaded = True
            elif kind == "run":
                if not loaded:
                    raise RuntimeError("`run` before `load`")
                for _ in range(int(message["iterations"])):
                    timed = runner.run_once()
                    # Seconds, or for a generative family a dict that adds the
                    # first token's and each decode step's seconds.
                    timed = timed if isinstance(timed, dict) else {"seconds": timed}
                    _send(out, dict({"type": "iteration"}, **timed))
            elif kind == "outputs":
                if not loaded:
                    raise RuntimeError("`outputs` before `load`")
                runner.outputs(message["inputs"], message["outputs"])
                _send(out, {"type": "outputs", "path": message["outputs"]})
            elif kind == "end":
                return 0
            else:
                raise RuntimeError(f"unknown message type {kind!r}")
        except Unsupported as e:
            _error(out, "unsupported", str(e))
            return 0
        except OutOfMemory as e:
            _error(out, "out_of_memory", str(e))
            return 1
        except Exception as e:  # anything else the engine raised: a failed cell, said once
            traceback.print_exc(file=sys.stderr)
            _error(out, "failed", f"{type(e).__name__}: {e}")
            return 1
    return 0
