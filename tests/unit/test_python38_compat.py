"""Everything that runs on a managed host must import on Python 3.8 (CONTRIBUTING: modules and
module_utils), but no 3.8 interpreter is installable here. This test catches what would break it:
3.9+ syntax (``ast.parse`` with ``feature_version=(3, 8)``), 3.9+ standard-library calls and
modules, dict union and builtins subscripted at run time (``list[int]`` outside an annotation).
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
HOST_CODE = sorted((ROOT / "plugins" / "modules").glob("*.py")) + sorted(
    (ROOT / "plugins" / "module_utils").glob("*.py")
)
NEW_ATTRIBUTES = {
    "removeprefix": "str.removeprefix (3.9)",
    "removesuffix": "str.removesuffix (3.9)",
    "waitstatus_to_exitcode": "os.waitstatus_to_exitcode (3.9)",
    "is_relative_to": "PurePath.is_relative_to (3.9)",
    "with_stem": "PurePath.with_stem (3.9)",
    "randbytes": "random.randbytes (3.9)",
    "pidfd_open": "os.pidfd_open (3.9)",
    "to_thread": "asyncio.to_thread (3.9)",
    "bit_count": "int.bit_count (3.10)",
    "pairwise": "itertools.pairwise (3.10)",
    "batched": "itertools.batched (3.12)",
}
NEW_MODULES = {"zoneinfo", "graphlib", "tomllib"}
GENERIC_BUILTINS = {"list", "dict", "tuple", "set", "frozenset", "type"}


def _annotation_nodes(tree):
    seen = set()
    for node in ast.walk(tree):
        annotations = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            every = args.posonlyargs + args.args + args.kwonlyargs + [args.vararg, args.kwarg]
            annotations = [a.annotation for a in every if a is not None] + [node.returns]
        elif isinstance(node, ast.AnnAssign):
            annotations = [node.annotation]
        for annotation in annotations:
            if annotation is not None:
                seen.update(id(n) for n in ast.walk(annotation))
    return seen


def problems(source, name="<source>"):
    """The 3.9+ constructs in ``source``, as ``line: what`` strings."""
    try:
        tree = ast.parse(source, name, feature_version=(3, 8))
    except SyntaxError as exc:
        return ["%s: syntax newer than Python 3.8: %s" % (exc.lineno, exc.msg)]
    in_annotation = _annotation_nodes(tree)
    found = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Attribute) and node.attr in NEW_ATTRIBUTES:
            found.append("%d: %s" % (line, NEW_ATTRIBUTES[node.attr]))
        elif isinstance(node, ast.Call) and any(k.arg == "strict" for k in node.keywords):
            if isinstance(node.func, ast.Name) and node.func.id == "zip":
                found.append("%d: zip(strict=) (3.10)" % line)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            if isinstance(node.left, ast.Dict) or isinstance(node.right, ast.Dict):
                found.append("%d: dict union (3.9)" % line)
        elif isinstance(node, ast.Import):
            found.extend("%d: module %s" % (line, a.name) for a in node.names if a.name in NEW_MODULES)
        elif isinstance(node, ast.ImportFrom) and node.module in NEW_MODULES:
            found.append("%d: module %s" % (line, node.module))
        elif (
            isinstance(node, ast.Subscript)
            and id(node) not in in_annotation
            and isinstance(node.value, ast.Name)
            and node.value.id in GENERIC_BUILTINS
        ):
            found.append("%d: %s[...] at run time (3.9)" % (line, node.value.id))
    return found


@pytest.mark.parametrize("path", HOST_CODE, ids=lambda p: p.name)
def test_host_code_is_python38(path):
    assert problems(path.read_text(), str(path)) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("x = 'a'.removeprefix('b')\n", "str.removeprefix"),
        ("match x:\n    case 1:\n        pass\n", "syntax newer than Python 3.8"),
        ("a = {} | {}\n", "dict union"),
        ("import zoneinfo\n", "module zoneinfo"),
        ("Paths = list[str]\n", "list[...] at run time"),
        ("for a, b in zip(x, y, strict=True):\n    pass\n", "zip(strict=)"),
    ],
)
def test_the_checker_finds_newer_python(source, expected):
    assert any(expected in p for p in problems(source))


def test_the_checker_allows_annotations_under_future_import():
    source = "from __future__ import annotations\ndef f(a: list[int]) -> dict[str, int]:\n    b: set[int] = set()\n"
    assert problems(source) == []
