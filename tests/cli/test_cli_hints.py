"""Every hint names only options that exist (issue 21, row 13).

The test reads every string of ``src/demvae`` that names an option (docstrings aside) and checks each option
against the Typer CLI's real options:

* ``demvae CMD ... --opt`` (up to the closing backtick, ``|`` or the next ``demvae``): an option of CMD;
* a bare ``--opt`` in a command's own function in ``cli.py``: an option of that command; in a module-level
  string of ``cli.py``: of every command whose function uses it (directly or through other module-level names;
  ``main``, the error boundary, serves every command);
* a bare ``--opt`` elsewhere: an option of every command that can surface the message, as declared in
  :data:`SURFACES` below (a module or ``module:function`` missing from it fails the test: declare it);
* unless the string sits under ``if "--opt" in ...``: the code names the option only where the command has it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import typer.main

import demvae
from demvae.cli import app

SRC = Path(demvae.__file__).parent

SURFACES: dict[str, tuple[str, ...]] = {
    # which commands can show the messages of a module (or of one of its functions)
    "config.py:parse_overrides": ("train", "config show", "reproduce"),
    "data/corpora/__init__.py": ("train", "eval", "clusters", "report", "reproduce", "sample", "data stats"),
    "data/fingerprint.py": ("eval", "clusters", "report", "sample", "train"),
    "device.py": ("train", "sample", "encode", "clusters", "respond", "eval", "reproduce", "report", "demo"),
    "device.py:resolve_precision": ("train", "reproduce"),  # its default hint; eval passes its own (--precision)
    "evaluation/run.py:evaluate_run": ("eval",),  # --precision bf16 refused: only eval takes a precision
    "evaluation/run.py:metrics_path": ("eval", "reproduce", "demo"),
    "demo.py:run_demo": ("demo",),
    "runs.py:size_warning": ("train",),
    "runs.py:resume": ("train", "reproduce"),
    "runs.py:train_or_reuse": ("reproduce", "demo"),
    # (the files of these commands; output folders never exist-check, and the demo checks its page itself)
    "training/outputs.py:check_output": ("sample", "encode", "clusters", "eval", "report"),
    "training/run_folder.py:acquire": ("train", "reproduce", "demo"),
    "training/trainer.py:__init__": ("train", "reproduce"),
    "training/run_folder.py:claim": ("train",),  # reproduce and demo refuse such a folder first (runs.py)
}

OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
EXPLICIT = [re.compile(r"`demvae ((?:data |config )?[a-z]+)([^`]*)`"),  # `demvae CMD ...`
            re.compile(r"demvae ((?:data |config )?[a-z]+)((?:(?!demvae |\|).)*)")]  # demvae CMD ... (to | or end)
HOLE = "{}"


def _commands() -> dict[str, set[str]]:
    """Command path ("eval", "data stats") -> its options; plus callback name -> command path."""
    options, names = {}, {}

    def walk(group, prefix):
        for name, cmd in group.commands.items():
            path = f"{prefix}{name}"
            if hasattr(cmd, "commands"):
                walk(cmd, f"{path} ")
            else:
                options[path] = {opt for p in cmd.params for opt in p.opts}
                names[cmd.callback.__name__] = path
    walk(typer.main.get_command(app), "")
    return options, names


OPTIONS, CALLBACKS = _commands()


def _text(node: ast.AST) -> str:
    """A string constant, or an f-string with each replacement field as ``{}``."""
    if isinstance(node, ast.Constant):
        return node.value
    return "".join(v.value if isinstance(v, ast.Constant) else HOLE for v in node.values)


def _messages(tree: ast.Module):
    """(node, text) of every string that is not a docstring, an f-string counted once as a whole."""
    inner = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    docs = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
    for node in ast.walk(tree):
        if id(node) in inner or id(node) in docs:
            continue
        if isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            yield node, _text(node)


def _parents(tree: ast.Module) -> dict[int, ast.AST]:
    return {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _enclosing(node, parents, kind):
    while id(node) in parents:
        node = parents[id(node)]
        if isinstance(node, kind):
            return node
    return None


def _guarded(node, parents, option: str) -> bool:
    """Whether ``node`` sits under ``if "--opt" in ...``."""
    while id(node) in parents:
        node = parents[id(node)]
        if isinstance(node, ast.If) and any(
                isinstance(c, ast.Compare) and isinstance(c.left, ast.Constant) and c.left.value == option
                and isinstance(c.ops[0], ast.In) for c in ast.walk(node.test)):
            return True
    return False


def _cli_module_names(tree: ast.Module) -> dict[str, set[str]]:
    """Module-level name of cli.py -> the commands whose functions use it (through other names too)."""
    uses: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            uses[node.name] = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {n.id for n in ast.walk(node.value) if isinstance(n, ast.Name)} if node.value else set()
            uses.update({t.id: names for t in targets if isinstance(t, ast.Name)})
    reach: dict[str, set[str]] = {name: set() for name in uses}
    serves = [*CALLBACKS.items(), *(("main", command) for command in OPTIONS)]  # main: every command's errors
    for function, command in serves:
        seen, todo = set(), [function]
        while todo:
            name = todo.pop()
            if name in seen or name not in uses:
                continue
            seen.add(name)
            reach[name].add(command)
            todo.extend(uses[name])
    return reach


def _hints():
    """(where, command, option, guarded) for every option every message names."""
    for path in sorted(SRC.rglob("*.py")):
        module = str(path.relative_to(SRC))
        tree = ast.parse(path.read_text(encoding="utf-8"))
        parents = _parents(tree)
        cli_names = _cli_module_names(tree) if module == "cli.py" else {}
        for node, text in _messages(tree):
            if not OPTION.search(text) or OPTION.fullmatch(text) or "var(--" in text or "{--" in text:
                continue  # an option's own name (a declaration), or CSS custom properties
            where = f"{module}:{node.lineno}"
            rest = text
            for pattern in EXPLICIT:
                for match in pattern.finditer(rest):
                    for option in OPTION.findall(match.group(2)):
                        yield where, (match.group(1),), option, False
                rest = pattern.sub(" ", rest)
            bare = OPTION.findall(rest)
            if not bare:
                continue
            function = _enclosing(node, parents, (ast.FunctionDef, ast.AsyncFunctionDef))
            if module == "cli.py":
                if function is not None and _enclosing(function, parents, ast.FunctionDef) is None \
                        and function.name in CALLBACKS:
                    commands = (CALLBACKS[function.name],)
                else:
                    top = function or _enclosing(node, parents, (ast.Assign, ast.AnnAssign))
                    name = top.name if isinstance(top, ast.FunctionDef) else next(
                        t.id for t in (top.targets if isinstance(top, ast.Assign) else [top.target]))
                    commands = tuple(sorted(cli_names.get(name, ())))
            else:
                key = f"{module}:{function.name}" if function is not None else module
                commands = SURFACES.get(key, SURFACES.get(module))  # None: undeclared (the test says so)
            for option in bare:
                yield where, commands, option, _guarded(node, parents, option)


HINTS = list(_hints())


def test_the_walk_finds_the_hints():
    """The walk sees the messages it should (so an empty walk cannot pass)."""
    found = {(where.split(":")[0], option) for where, _, option, _ in HINTS}
    for expected in [("cli.py", "--resume"), ("data/fingerprint.py", "--force"), ("data/fingerprint.py", "--corpus"),
                     ("runs.py", "--code"), ("training/run_folder.py", "--force"), ("cli.py", "--out")]:
        assert expected in found, expected
    assert len(HINTS) > 30


@pytest.mark.parametrize("where, commands, option, guarded", HINTS, ids=[f"{h[0]}{h[2]}" for h in HINTS])
def test_every_option_a_hint_names_exists(where, commands, option, guarded):
    if guarded:
        return
    assert commands is not None, f"{where} names {option}: declare in SURFACES which commands show its messages"
    assert commands, f"{where}: {option} is named by a message no command shows"
    for command in commands:
        assert command in OPTIONS, f"{where}: no command `demvae {command}`"
        assert option in OPTIONS[command], f"{where}: `demvae {command}` has no {option}"


# --- hints that depend on the run or the command -----------------------------------------------------------------

@pytest.mark.parametrize("model, sets, code", [
    ("gm-vae", {"n_values": 1}, None),  # one component per variable: no discrete code
    ("vae", {}, None),
    ("dgm-vae", {"n_variables": 3}, "0,0,0"),
    ("cm-vae", {}, "0"),  # cm: one code variable, whatever n_variables says
])
def test_the_summary_suggests_a_code_only_for_a_model_with_one(tmp_path, model, sets, code):
    from demvae.config import compose
    from demvae.runs import summary

    (tmp_path / "config.yaml").write_text(compose(model=model, overrides={"model": sets}).to_yaml())
    text = summary(tmp_path)
    if code is None:
        assert "--code" not in text and f"demvae sample {tmp_path}" in text
    else:
        assert f"demvae sample {tmp_path} --code {code}" in text
