"""The reason catalogue (bucketvault.reasons) is exactly the set of reasons the code uses.

An AST walk finds every reason literal under src/bucketvault (generated v1/ excepted):
``reason=``/``default_reason``/``capped_by``-style keywords, assignments and defaults, the
same parameters passed positionally (``CheckResult(state, "REASON", ...)``,
``bad_field(name, problem, "REASON")``), module constants they name, and what functions
return into a reason variable (``reason, detail = self._forbidden_detail()``).
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from bucketvault import reasons

SRC = Path(__file__).resolve().parents[2] / "src" / "bucketvault"
README = SRC.parents[1] / "README.md"

# Names of variables, attributes and parameters that hold a reason.
REASON_NAMES = frozenset(
    {"reason", "default_reason", "limit_reason", "capped_by", "expiry_capped_by", "url_error"}
)
REASON_SHAPE = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*")
# Prefixes meaning the same thing: the catalogue keeps only the INVALID_ form.
SYNONYM_PREFIXES = ("BAD_", "MALFORMED_", "INVALID_", "ILLEGAL_")
# Pairs that look alike but mean different things, each with why.
NOT_SYNONYMS = {
    # A field of a credential being registered is malformed (InvalidArgument), versus the
    # cloud rejecting a stored credential during CheckMount.
    frozenset({"INVALID_CREDENTIAL", "INVALID_CREDENTIALS"}),
}
# Reasons whose raise sites live in files owned elsewhere; renaming them is pending.
PENDING_RENAMES: frozenset[str] = frozenset()


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        if rel.parts[0] != "v1":
            yield str(rel), ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _params(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    names = [a.arg for a in (*fn.args.posonlyargs, *fn.args.args)]
    return names[1:] if names[:1] in (["self"], ["cls"]) else names


def _is_dataclass(cls: ast.ClassDef) -> bool:
    return any(
        _name(d.func if isinstance(d, ast.Call) else d) == "dataclass" for d in cls.decorator_list
    )


class _Scan:
    def __init__(self) -> None:
        self.modules = dict(_modules())
        self.consts: dict[str, dict[str, str]] = {}
        self.signatures: dict[str, list[list[str]]] = defaultdict(list)
        for rel, tree in self.modules.items():
            self.consts[rel] = {
                t.id: n.value.value
                for n in tree.body
                if isinstance(n, ast.Assign)
                and isinstance(n.value, ast.Constant)
                and isinstance(n.value.value, str)
                for t in n.targets
                if isinstance(t, ast.Name)
            }
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    self.signatures[node.name].append(_params(node))
                elif isinstance(node, ast.ClassDef) and _is_dataclass(node):
                    fields = [
                        s.target.id
                        for s in node.body
                        if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)
                    ]
                    self.signatures[node.name].append(fields)
        self.every_const = {k: v for table in self.consts.values() for k, v in table.items()}
        self.used: dict[str, set[str]] = defaultdict(set)
        for rel, tree in self.modules.items():
            self._module(rel, tree)

    def _values(self, rel: str, node: ast.expr | None) -> Iterator[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value:
            yield node.value
        elif isinstance(node, ast.Name):
            value = self.consts[rel].get(node.id, self.every_const.get(node.id))
            if value:
                yield value
        elif isinstance(node, ast.IfExp):
            yield from self._values(rel, node.body)
            yield from self._values(rel, node.orelse)
        elif isinstance(node, ast.BoolOp):
            for value in node.values:
                yield from self._values(rel, value)

    def _add(self, rel: str, node: ast.expr | None) -> None:
        for value in self._values(rel, node):
            self.used[value].add(rel)

    def _module(self, rel: str, tree: ast.Module) -> None:
        returns_into: set[tuple[str, int | None]] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                for kw in node.keywords:
                    if kw.arg in REASON_NAMES:
                        self._add(rel, kw.value)
                callee = _name(node.func)
                for params in self.signatures.get(callee or "", []):
                    for param, arg in zip(params, node.args, strict=False):
                        if param in REASON_NAMES:
                            self._add(rel, arg)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                args = node.args
                positional = [*args.posonlyargs, *args.args]
                pairs = [
                    *zip(
                        positional[len(positional) - len(args.defaults) :],
                        args.defaults,
                        strict=True,
                    ),
                    *zip(args.kwonlyargs, args.kw_defaults, strict=True),
                ]
                for arg, default in pairs:
                    if arg.arg in REASON_NAMES:
                        self._add(rel, default)
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    self._assign(rel, target, node.value, returns_into)
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for index in {i for name, i in returns_into if name == node.name}:
                    for ret in ast.walk(node):
                        if isinstance(ret, ast.Return):
                            self._pick(rel, ret.value, index)

    def _assign(
        self,
        rel: str,
        target: ast.expr,
        value: ast.expr | None,
        returns_into: set[tuple[str, int | None]],
    ) -> None:
        if isinstance(target, ast.Tuple):
            for i, element in enumerate(target.elts):
                if _name(element) not in REASON_NAMES:
                    continue
                if isinstance(value, ast.Tuple) and i < len(value.elts):
                    self._add(rel, value.elts[i])
                elif isinstance(value, ast.Call) and (callee := _name(value.func)):
                    returns_into.add((callee, i))
        elif _name(target) in REASON_NAMES:
            if isinstance(value, ast.Call) and (callee := _name(value.func)):
                returns_into.add((callee, None))
            self._add(rel, value)

    def _pick(self, rel: str, value: ast.expr | None, index: int | None) -> None:
        if index is None:
            self._add(rel, value)
        elif isinstance(value, ast.Tuple) and index < len(value.elts):
            self._add(rel, value.elts[index])


SCAN = _Scan()
CATALOGUED = {r.name: r for r in reasons.REASONS}


def test_every_reason_found_looks_like_a_reason() -> None:
    odd = sorted(v for v in SCAN.used if not REASON_SHAPE.fullmatch(v))
    assert odd == []


def test_the_scan_sees_every_kind_of_use() -> None:
    # Guards the walk itself: one reason reached by each rule.
    for reason in (
        "UNSEAL_FAILED",  # default_reason = ...
        "KEY_OUTSIDE_MOUNT",  # reason=...
        "ACCESS_DENIED",  # CheckResult(state, "...", ...)
        "INVALID_CREDENTIAL",  # def bad_field(..., reason="...")
        "INVALID_SAS",  # bad_field(name, problem, "...")
        "MOUNT_MAX_TTL",  # ttl, capped_by = ..., "..."
        "SAS_EXPIRY",  # until, reason, tokens = self._begin(...)
        "SAS_PERMISSION_MISSING",  # reason, detail = self._forbidden_detail()
        "PROVIDER_MAX",  # capped_by = MODULE_CONSTANT
    ):
        assert reason in SCAN.used, reason


def test_every_reason_used_is_catalogued() -> None:
    missing = {r: sorted(SCAN.used[r]) for r in SCAN.used if r not in CATALOGUED}
    assert missing == {}


def test_every_catalogue_entry_is_used() -> None:
    dead = sorted(r for r in CATALOGUED if r not in SCAN.used)
    assert dead == []


def test_the_catalogue_is_sorted_unique_and_described() -> None:
    names = [r.name for r in reasons.REASONS]
    assert names == sorted(set(names))
    for r in reasons.REASONS:
        assert REASON_SHAPE.fullmatch(r.name), r.name
        assert r.meaning.strip() and "\n" not in r.meaning and "|" not in r.meaning, r.name
        assert r.error is not None or r.check or r.expiry, r.name


def _stem(name: str) -> str:
    for prefix in SYNONYM_PREFIXES:
        if name.startswith(prefix):
            return name.removeprefix(prefix)
    return name


def test_no_two_reasons_are_synonyms() -> None:
    by_stem: dict[str, list[str]] = defaultdict(list)
    for name in CATALOGUED:
        by_stem[_stem(name).removesuffix("S")].append(name)
    clashes = [
        sorted(names)
        for names in by_stem.values()
        if len(names) > 1 and frozenset(names) not in NOT_SYNONYMS
    ]
    assert clashes == []
    stray = sorted(
        n
        for n in CATALOGUED
        if n.startswith(SYNONYM_PREFIXES)
        and not n.startswith("INVALID_")
        and n not in PENDING_RENAMES
    )
    assert stray == []


def test_the_readme_table_is_generated_from_the_catalogue() -> None:
    text = README.read_text(encoding="utf-8")
    begin, end = text.index(reasons.BEGIN_MARKER), text.index(reasons.END_MARKER)
    section = text[begin + len(reasons.BEGIN_MARKER) : end]
    assert section.strip() == reasons.markdown().strip(), "run `make docs`"
    assert reasons.rewrite(text) == text
