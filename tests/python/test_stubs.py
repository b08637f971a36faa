"""``python/kiwi/_kiwi.pyi`` describes the compiled ``kiwi._kiwi`` exactly, and ships.

Compared both ways: every public name of the extension (module attributes,
functions, classes, each class's public methods and properties) is in the
stub and every name in the stub exists, with the same kind (property or
method), the same parameters (names, and which have defaults), the same
constructibility (``__init__`` in the stub iff the class has a constructor)
and, for module attributes, the same type.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.resources
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kiwi import _kiwi

pytestmark = pytest.mark.kiwi_only

STUB = Path(__file__).resolve().parents[2] / "python" / "kiwi" / "_kiwi.pyi"
#: Dunder names that are part of the public surface all the same.
PUBLIC_DUNDERS = frozenset({"__version__"})


def is_public(name: str) -> bool:
    return not name.startswith("_") or name in PUBLIC_DUNDERS


# -- what the stub says ----------------------------------------------------------


@dataclass(frozen=True)
class Params:
    """Parameter names (without self) and which of them have defaults."""

    names: tuple[str, ...]
    defaults: frozenset[str]


@dataclass
class StubClass:
    members: dict[str, str] = field(default_factory=dict)  # name -> "property" | "method"
    params: dict[str, Params] = field(default_factory=dict)
    init: Params | None = None


@dataclass
class Stub:
    attributes: dict[str, str] = field(default_factory=dict)  # name -> annotation source
    functions: dict[str, Params] = field(default_factory=dict)
    classes: dict[str, StubClass] = field(default_factory=dict)


def stub_params(func: ast.FunctionDef, method: bool) -> Params:
    args = func.args
    positional = [*args.posonlyargs, *args.args]
    with_defaults = {a.arg for a in positional[len(positional) - len(args.defaults) :]}
    with_defaults |= {a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None}
    names = [a.arg for a in positional] + [a.arg for a in args.kwonlyargs]
    if method:
        assert names and names[0] == "self", f"{func.name} lacks self"
        names = names[1:]
    return Params(tuple(names), frozenset(with_defaults))


def is_property(func: ast.FunctionDef) -> bool:
    return any(isinstance(d, ast.Name) and d.id == "property" for d in func.decorator_list)


def read_stub(source: str) -> Stub:
    stub = Stub()
    for node in ast.parse(source).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            stub.attributes[node.target.id] = ast.unparse(node.annotation)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                assert isinstance(target, ast.Name)
                stub.attributes[target.id] = "?"
        elif isinstance(node, ast.FunctionDef):
            stub.functions[node.name] = stub_params(node, method=False)
        elif isinstance(node, ast.ClassDef):
            cls = stub.classes.setdefault(node.name, StubClass())
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    if item.name in ("__init__", "__new__"):
                        cls.init = stub_params(item, method=True)
                    elif is_public(item.name):
                        cls.members[item.name] = "property" if is_property(item) else "method"
                        if not is_property(item):
                            cls.params[item.name] = stub_params(item, method=True)
                elif isinstance(item, ast.AsyncFunctionDef):
                    pytest.fail(
                        f"{node.name}.{item.name}: the extension has no coroutine functions; stub an awaitable return"
                    )
    return stub


def runtime_params(obj: Any, method: bool) -> Params:
    signature = inspect.signature(obj)
    parameters = list(signature.parameters.values())
    if method:
        assert parameters and parameters[0].name == "self"
        parameters = parameters[1:]
    return Params(
        tuple(p.name for p in parameters),
        frozenset(p.name for p in parameters if p.default is not inspect.Parameter.empty),
    )


def runtime_public_names() -> set[str]:
    return {name for name in dir(_kiwi) if is_public(name)} | set(getattr(_kiwi, "__all__", ()))


def constructible(cls: type) -> bool:
    """pyo3 classes without ``#[new]`` refuse instances outright."""
    try:
        cls()
    except TypeError as e:
        return "cannot create" not in str(e) and "No constructor defined" not in str(e)
    return True


@pytest.fixture(scope="module")
def stub() -> Stub:
    return read_stub(STUB.read_text(encoding="utf-8"))


# -- the comparisons --------------------------------------------------------------


def module_mismatches(stub: Stub) -> list[str]:
    """Differences between the stub's module-level names and the extension's."""
    in_stub = {n for n in (*stub.attributes, *stub.functions, *stub.classes) if is_public(n)}
    runtime = runtime_public_names()
    problems = [f"{n}: in kiwi._kiwi, missing from the stub" for n in sorted(runtime - in_stub)]
    problems += [f"{n}: in the stub, not in kiwi._kiwi" for n in sorted(in_stub - runtime)]
    for name, annotation in stub.attributes.items():
        if name not in runtime:
            continue
        value = getattr(_kiwi, name)
        if annotation != type(value).__name__:
            problems.append(f"{name}: stub says {annotation}, runtime is {type(value).__name__}")
    for name, params in stub.functions.items():
        if name not in runtime:
            continue
        value = getattr(_kiwi, name)
        if isinstance(value, type) or not callable(value):
            problems.append(f"{name}: a function in the stub, {type(value).__name__} at runtime")
        elif runtime_params(value, method=False) != params:
            problems.append(f"{name}: stub {params}, runtime {runtime_params(value, method=False)}")
    for name in stub.classes:
        if name in runtime and not isinstance(getattr(_kiwi, name), type):
            problems.append(f"{name}: a class in the stub, not at runtime")
    return problems


def class_mismatches(cls: type, stub_class: StubClass) -> list[str]:
    """Differences between a class's public members and its stub."""
    runtime: dict[str, str] = {}
    for name, value in vars(cls).items():
        if not is_public(name):
            continue
        if inspect.isdatadescriptor(value):
            runtime[name] = "property"
        elif callable(value):
            runtime[name] = "method"
        else:
            runtime[name] = "attribute"
    problems = []
    for name in sorted(set(runtime) | set(stub_class.members)):
        if runtime.get(name) != stub_class.members.get(name):
            problems.append(f"{name}: runtime {runtime.get(name)}, stub {stub_class.members.get(name)}")
    for name, params in stub_class.params.items():
        if runtime.get(name) == "method" and runtime_params(getattr(cls, name), method=True) != params:
            problems.append(f"{name}: stub {params}, runtime {runtime_params(getattr(cls, name), method=True)}")
    if constructible(cls):
        if stub_class.init is None:
            problems.append("has a constructor; the stub lacks __init__")
        elif runtime_params(cls, method=False) != stub_class.init:
            problems.append(f"__init__: stub {stub_class.init}, runtime {runtime_params(cls, method=False)}")
    elif stub_class.init is not None:
        problems.append("cannot be instantiated; the stub has __init__")
    return problems


RUNTIME_CLASSES = sorted(n for n in dir(_kiwi) if isinstance(getattr(_kiwi, n), type))


def test_module_names_kinds_and_signatures_match_both_ways(stub: Stub) -> None:
    assert module_mismatches(stub) == []
    assert set(_kiwi.__all__) == runtime_public_names()


@pytest.mark.parametrize("class_name", RUNTIME_CLASSES)
def test_class_members_match_both_ways(stub: Stub, class_name: str) -> None:
    assert class_name in stub.classes, f"class {class_name} missing from the stub"
    assert class_mismatches(getattr(_kiwi, class_name), stub.classes[class_name]) == []


def test_the_comparison_catches_drift() -> None:
    """A renamed, missing, invented or mis-typed name in the stub is reported."""
    source = STUB.read_text(encoding="utf-8")

    def classes_problems(text: str) -> list[str]:
        stub = read_stub(text)
        return [
            p for n in RUNTIME_CLASSES for p in class_mismatches(getattr(_kiwi, n), stub.classes.get(n, StubClass()))
        ]

    assert classes_problems(source.replace("def stop(self)", "def halt(self)")) == [
        "halt: runtime None, stub method",
        "stop: runtime method, stub None",
    ]
    assert any(
        "recv" in p for p in classes_problems(source.replace("def recv(self, max: int)", "def recv(self, size: int)"))
    )
    assert "has a constructor" in " ".join(
        classes_problems(source.replace("def __init__(self, path", "def _init(self, path"))
    )
    assert module_mismatches(read_stub(source.replace("REDIS_VERSION: str", "REDIS_VERSION: int"))) == [
        "REDIS_VERSION: stub says int, runtime is str"
    ]
    assert module_mismatches(read_stub(source + "\ndef invented() -> None: ...\n")) == [
        "invented: in the stub, not in kiwi._kiwi"
    ]
    assert module_mismatches(read_stub(source.replace("def run_server_cli(", "def _run_server_cli("))) == [
        "run_server_cli: in kiwi._kiwi, missing from the stub"
    ]


# -- what ships --------------------------------------------------------------------


def test_py_typed_and_stub_ship_in_the_installed_package() -> None:
    package = importlib.resources.files("kiwi")
    assert package.joinpath("py.typed").is_file()
    assert package.joinpath("_kiwi.pyi").is_file()
    recorded = {str(path).replace("\\", "/") for path in importlib.metadata.files("kiwi") or ()}
    assert "kiwi/py.typed" in recorded
    assert "kiwi/_kiwi.pyi" in recorded
    # The installed stub is the one checked above (a stale install would hide drift).
    assert package.joinpath("_kiwi.pyi").read_text(encoding="utf-8") == STUB.read_text(encoding="utf-8")
