"""Single-line mutation testing of the library's maths (issue 10).

Every mutant changes one token of one code line of a target module (an arithmetic or comparison
operator, a numeric constant, a unary minus, a reduction); the module's tests then run against it.
A mutant is *killed* when a test fails (or errors, or hangs past the timeout), *survived* otherwise.

It is fast because the parent process imports torch and pytest once and forks a child per mutant;
the child drops the demvae modules, so the mutated file is what its tests import.

    python scripts/mutation_pass.py                   # every target, summary + survivors
    python scripts/mutation_pass.py --only objectives --json out.json
    python scripts/mutation_pass.py --rerun out.json  # only the survivors of an earlier pass (matched
                                                      # by line text and mutation, so edits elsewhere are fine)
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import signal
import sys
import time
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "demvae"

TARGETS = {
    "expfam/family.py": ["tests/expfam"],
    "expfam/gaussian.py": ["tests/expfam"],
    "expfam/categorical.py": ["tests/expfam"],
    "expfam/poisson.py": ["tests/expfam/test_expfam_contract.py"],
    "expfam/mixture.py": ["tests/expfam", "tests/evaluation/test_eval_posterior.py"],
    "objectives.py": ["tests/expfam/test_expfam_objectives.py", "tests/models/test_models_objective.py",
                      "tests/test_terms.py"],
    "terms.py": ["tests/test_terms.py", "tests/expfam/test_expfam_objectives.py",
                 "tests/evaluation/test_eval_posterior.py", "tests/models/test_models_objective.py"],
    "models/latents.py": ["tests/models/test_models_latents.py", "tests/expfam/test_expfam_sampling.py",
                          "tests/models/test_models_precision.py", "tests/models/test_models_supervision.py",
                          "tests/evaluation/test_eval_posterior.py", "tests/models/test_models_heads.py",
                          "tests/models/test_models_presets.py", "tests/evaluation/test_eval_likelihood.py"],
    "training/validation.py": ["tests/evaluation/test_eval_posterior.py", "tests/training/test_training_dialog.py"],
    "evaluation/bleu.py": ["tests/evaluation/test_eval_bleu.py"],
    "evaluation/clustering.py": ["tests/evaluation/test_eval_clustering.py"],
    "evaluation/embedding.py": ["tests/evaluation/test_eval_embedding.py"],
    "evaluation/wkl.py": ["tests/evaluation/test_eval_wkl.py"],
    "evaluation/likelihood.py": ["tests/evaluation/test_eval_likelihood.py"],
    "evaluation/codes.py": ["tests/evaluation/test_eval_clustering.py", "tests/models/test_models_supervision.py"],
}

SWAPS = {"+": "-", "-": "+", "*": "/", "/": "*", "<": "<=", "<=": "<", ">": ">=", ">=": ">", "==": "!=",
         "!=": "==", "**": "*", "//": "/"}
NUMBER_SWAPS = {"0": "1", "1": "0", "2": "3", "0.5": "1.0", "1.0": "0.5", "1e-20": "1e-2", "100.0": "10.0"}
CALL_SWAPS = {"sum": "mean", "mean": "sum", "logsumexp": "amax", "exp": "log", "log": "exp",
              "max": "min", "min": "max", "argmax": "argmin", "square": "abs"}


def code_lines(text: str) -> set[int]:
    """Line numbers that hold code, not docstrings or comments."""
    lines = set()
    prev = tokenize.INDENT
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.STRING and prev in (tokenize.INDENT, tokenize.NEWLINE, tokenize.DEDENT):
            prev = tok.type
            continue  # a docstring
        if tok.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                            tokenize.STRING):
            lines.update(range(tok.start[0], tok.end[0] + 1))
        prev = tok.type
    return lines


def mutants(text: str):
    """(line, column, original, replacement, description) for every single-token mutation."""
    keep = code_lines(text)
    source = text.splitlines()
    toks = list(tokenize.generate_tokens(io.StringIO(text).readline))
    for i, tok in enumerate(toks):
        line = tok.start[0]
        if line not in keep or line > len(source):
            continue
        if source[line - 1].lstrip().startswith(("import", "from", "def ", "class ", "@", "raise")):
            continue
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if tok.type == tokenize.OP and tok.string in SWAPS:
            prev = toks[i - 1]
            unary_minus = tok.string == "-" and (prev.type == tokenize.OP and prev.string in "(,=[:*+-/" or
                                                 prev.string in ("return", "=", "else"))
            if unary_minus:
                yield line, tok.start[1], "-", "", "drop unary minus"
            elif tok.string not in ("*", "**") or (prev.type != tokenize.OP or prev.string not in "(,"):
                yield line, tok.start[1], tok.string, SWAPS[tok.string], f"{tok.string} -> {SWAPS[tok.string]}"
        elif tok.type == tokenize.NUMBER and tok.string in NUMBER_SWAPS:
            new = NUMBER_SWAPS[tok.string]
            yield line, tok.start[1], tok.string, new, f"{tok.string} -> {new}"
        elif (tok.type == tokenize.NAME and tok.string in CALL_SWAPS and nxt is not None and nxt.string == "("
              and toks[i - 1].string == "."):
            new = CALL_SWAPS[tok.string]
            yield line, tok.start[1], tok.string, new, f".{tok.string}( -> .{new}("
        elif tok.type == tokenize.NAME and tok.string in ("True", "False"):
            new = "False" if tok.string == "True" else "True"
            yield line, tok.start[1], tok.string, new, f"{tok.string} -> {new}"


def apply(text: str, line: int, col: int, old: str, new: str) -> str:
    lines = text.splitlines(keepends=True)
    src = lines[line - 1]
    assert src[col:col + len(old)] == old, (src, col, old)
    lines[line - 1] = src[:col] + new + src[col + len(old):]
    return "".join(lines)


def run_tests(tests: list[str], timeout: float) -> str:
    """'killed' or 'survived': the target's tests, in a forked child that re-imports demvae."""
    pid = os.fork()
    if pid == 0:  # child
        for name in [m for m in sys.modules if m == "demvae" or m.startswith("demvae.")]:
            del sys.modules[name]
        import pytest

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        code = pytest.main(["-x", "-q", "-p", "no:cacheprovider", "--no-header", *tests])
        os._exit(0 if code == 0 else 1)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return "survived" if os.waitstatus_to_exitcode(status) == 0 else "killed"
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "killed"  # a hang counts as detected
        time.sleep(0.05)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="regex on target paths")
    ap.add_argument("--json", help="write every mutant's result here")
    ap.add_argument("--rerun", help="a --json file of an earlier pass: try only its survivors again")
    ap.add_argument("--timeout", type=float, default=300.0)
    args = ap.parse_args()
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT / "src"))
    import numpy  # noqa: F401  (imported once, shared by every forked child)
    import pytest  # noqa: F401
    import sacrebleu  # noqa: F401
    import sklearn.metrics  # noqa: F401
    import torch

    torch.set_num_threads(1)
    torch.testing.assert_close(torch.zeros(1), torch.zeros(1))  # its first call costs seconds: pay it once
    wanted = None
    if args.rerun:
        wanted = {(r["file"], r["code"], r["mutation"]) for r in json.loads(Path(args.rerun).read_text())
                  if r["outcome"] == "survived"}
    results = []
    for target, tests in TARGETS.items():
        if args.only and not re.search(args.only, target):
            continue
        if wanted is not None and not any(w[0] == target for w in wanted):
            continue
        path = SRC / target
        original = path.read_text()
        if run_tests(tests, args.timeout) != "survived":
            raise SystemExit(f"the tests of {target} fail without any mutation")
        try:
            for line, col, old, new, what in mutants(original):
                if wanted is not None and (target, original.splitlines()[line - 1].strip(), what) not in wanted:
                    continue
                path.write_text(apply(original, line, col, old, new))
                outcome = run_tests(tests, args.timeout)
                results.append({"file": target, "line": line, "mutation": what, "outcome": outcome,
                                "code": original.splitlines()[line - 1].strip()})
                print(f"{outcome:8s} {target}:{line} {what}", flush=True)
        finally:
            path.write_text(original)
    killed = sum(r["outcome"] == "killed" for r in results)
    print(f"\n{len(results)} mutants, {killed} killed, {len(results) - killed} survived")
    for r in results:
        if r["outcome"] == "survived":
            print(f"  SURVIVED {r['file']}:{r['line']} {r['mutation']}: {r['code']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
