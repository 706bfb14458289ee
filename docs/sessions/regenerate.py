"""Regenerate docs/debugging.md: run every pdb session and demo for real, paste the output.

    python docs/sessions/regenerate.py

Run it after a change that moves lines in minigrad (tests/test_docs.py fails until then).
The page is ``template.md`` with each ``{{NAME}}`` replaced by a script or its real output.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PY = sys.executable
ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONBREAKPOINT",)}
ENV["PYTHONPATH"] = str(REPO)
ENV["MPLBACKEND"] = "Agg"
ENV["COLUMNS"] = "100"


def clean(text):
    text = text.replace(str(HERE) + "/", "").replace(str(REPO) + "/", "")
    return text


def line_of(path, marker):
    lines = (REPO / path).read_text().splitlines()
    (n,) = [i + 1 for i, line in enumerate(lines) if marker in line]
    return n


def pdb_session(args, commands, cwd):
    run = subprocess.run(
        args,
        input="\n".join(commands) + "\n",
        capture_output=True,
        text=True,
        env=ENV,
        cwd=cwd,
        timeout=120,
    )
    out = clean(run.stdout + run.stderr)
    parts = out.split("(Pdb) ")
    # prompt k consumed command k: put each command back after its prompt
    pieces = [parts[0]]
    for k, seg in enumerate(parts[1:]):
        cmd = commands[k] if k < len(commands) else ""
        if k >= len(commands):  # pdb waiting at EOF after the last command
            break
        pieces.append("(Pdb) " + cmd + "\n" + seg)
    return "".join(pieces).rstrip("\n")


def run_script(name):
    run = subprocess.run([PY, name], capture_output=True, text=True, env=ENV, cwd=HERE, timeout=120)
    return clean(run.stdout + run.stderr).rstrip("\n")


step_stop = line_of("minigrad/nn/functional.py", "grad_weight = np.outer(delta, x)") + 1
A_CMDS = [
    "p op",
    "p delta",
    "p x",
    "p weight.shape",
    "p np.outer(delta, x)",
    "next",
    "p grad_inputs[1]",
    "p np.allclose(np.outer(delta, x), grad_inputs[1])",
    "continue",
    "p op, delta.shape, x.shape",
    "p delta",
    "step",
    "step",
    "list",
    f"until {step_stop}",
    "p grad_weight",
    "continue",
]
session_a = pdb_session([PY, "mlp_debug.py"], A_CMDS, HERE)

engine_line = line_of("minigrad/autograd.py", "# <- every op's backward runs here")
B_CMDS = [
    f'break minigrad/autograd.py:{engine_line}, node.name() == "LinearBackward"',
    "continue",
    "p node",
    "p node.next_functions",
    "delta = grad_outputs[0]",
    "x = node.ctx.saved_tensors[0]",
    "p delta",
    "p x",
    "next",
    "p grad_inputs[1]",
    "p delta.T @ x",
    "p np.outer(delta[0], x[0]) + np.outer(delta[1], x[1])",
    "p np.allclose(delta.T @ x, grad_inputs[1])",
    "continue",
    "p node",
    "continue",
]
session_b = pdb_session([PY, "-m", "pdb", str(HERE / "mlp_plain.py")], B_CMDS, REPO)
session_b = session_b.split("\nThe program finished and will be restarted")[0]
session_b += "\nThe program finished and will be restarted"

grep = subprocess.run(
    ["grep", "-n", "every op's backward runs here", "minigrad/autograd.py"],
    capture_output=True,
    text=True,
    cwd=REPO,
).stdout.strip()

values = {
    "MLP_DEBUG": (HERE / "mlp_debug.py").read_text().rstrip("\n"),
    "MLP_PLAIN_TAIL": "\n".join((HERE / "mlp_plain.py").read_text().splitlines()[18:]),
    "SESSION_A": session_a,
    "SESSION_B": session_b,
    "GREP": '$ grep -n "every op\'s backward runs here" minigrad/autograd.py\n' + grep,
    "ENGINE_LINE": str(engine_line),
    "TRACE_DEMO": (HERE / "trace_demo.py").read_text().rstrip("\n"),
    "TRACE_OUT": run_script("trace_demo.py"),
    "ANOMALY_DEMO": (HERE / "anomaly_demo.py").read_text().rstrip("\n"),
    "ANOMALY_OUT": run_script("anomaly_demo.py"),
    "DOT_DEMO": (HERE / "dot_demo.py").read_text().rstrip("\n"),
    "DOT_OUT": run_script("dot_demo.py"),
}
text = (HERE / "template.md").read_text()
for key, value in values.items():
    text = text.replace("{{" + key + "}}", value)
assert "{{" not in text, re.findall(r"\{\{\w+\}\}", text)
(REPO / "docs").mkdir(exist_ok=True)
(REPO / "docs/debugging.md").write_text(text)
print("wrote docs/debugging.md")
