"""Python metrics through the standard ``ast`` module (rules: :mod:`learners.code_metrics`)."""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from learners.code_metrics.base import CodeMetrics, split_lines


def _loop_points(node: ast.For | ast.AsyncFor | ast.While) -> int:
    return 1 + bool(node.orelse)


def _try_points(node: ast.Try | ast.TryStar) -> int:
    return len(node.handlers) + bool(node.orelse)


def _bool_op_points(node: ast.BoolOp) -> int:
    return len(node.values) - 1


def _comprehension_points(node: ast.comprehension) -> int:
    return 1 + len(node.ifs)


def _match_points(node: ast.Match) -> int:
    return sum(not _is_else_case(case) for case in node.cases)


def _is_else_case(case: ast.match_case) -> bool:
    pattern = case.pattern
    return isinstance(pattern, ast.MatchAs) and pattern.pattern is None and case.guard is None


def _one_point(node: ast.If | ast.IfExp) -> int:
    return 1


# Decision points per node type; a dict lookup on the exact type keeps the walk fast.
_DECISION_POINTS: dict[type[ast.AST], Callable[[Any], int]] = {
    ast.If: _one_point,
    ast.IfExp: _one_point,
    ast.For: _loop_points,
    ast.AsyncFor: _loop_points,
    ast.While: _loop_points,
    ast.Try: _try_points,
    ast.TryStar: _try_points,
    ast.BoolOp: _bool_op_points,
    ast.comprehension: _comprehension_points,
    ast.Match: _match_points,
}
# Leaves that carry no metric; skipping them halves the walk.
_LEAF_TYPES = (ast.expr_context, ast.operator, ast.boolop, ast.unaryop, ast.cmpop)


def _hint_slots(func: ast.FunctionDef | ast.AsyncFunctionDef, is_method: bool) -> tuple[int, int]:
    """(annotated, annotatable) slots of one function: its parameters and its return."""
    args = func.args
    positional = [*args.posonlyargs, *args.args]
    if is_method and positional and positional[0].arg in ("self", "cls"):
        positional = positional[1:]
    params = [*positional, *args.kwonlyargs]
    params += [extra for extra in (args.vararg, args.kwarg) if extra is not None]
    annotated = sum(p.annotation is not None for p in params) + (func.returns is not None)
    return annotated, len(params) + 1


def python_metrics(code: str, tree: ast.Module) -> CodeMetrics:
    decisions = 0
    func_decisions: list[int] = []  # own-body decision points, one entry per function
    classes = hinted = hint_slots = documented = 0
    methods: set[int] = set()  # ids of defs sitting directly in a class body
    in_string: set[int] = set()  # lines 2.. of multi-line string literals
    # Iterative walk, so that deep but valid trees cannot hit the recursion limit. Each entry is
    # (node, index in func_decisions of the function whose own body holds it, or -1).
    stack: list[tuple[ast.AST, int]] = [(tree, -1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, owner = pop()
        points_of = _DECISION_POINTS.get(type(node))
        if points_of is not None:
            points = points_of(node)
            decisions += points
            if owner >= 0:
                func_decisions[owner] += points
        elif isinstance(node, ast.Constant):
            if node.end_lineno is not None and node.end_lineno > node.lineno:
                in_string.update(range(node.lineno + 1, node.end_lineno + 1))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            annotated, slots = _hint_slots(node, id(node) in methods)
            hinted, hint_slots = hinted + annotated, hint_slots + slots
            documented += ast.get_docstring(node, clean=False) is not None
            func_decisions.append(0)
            body_owner = len(func_decisions) - 1
            for statement in node.body:
                push((statement, body_owner))
            # Decorators, defaults and annotations run in the enclosing scope.
            outer: list[ast.AST | None] = [*node.decorator_list, node.args, node.returns]
            for child in outer:
                if child is not None:
                    push((child, owner))
            continue
        elif isinstance(node, ast.ClassDef):
            classes += 1
            documented += ast.get_docstring(node, clean=False) is not None
            methods.update(id(statement) for statement in node.body)
        for field in node._fields:
            value = getattr(node, field, None)
            if isinstance(value, list):
                for item in value:
                    if isinstance(item, ast.AST) and not isinstance(item, _LEAF_TYPES):
                        push((item, owner))
            elif isinstance(value, ast.AST) and not isinstance(value, _LEAF_TYPES):
                push((value, owner))
    documented += ast.get_docstring(tree, clean=False) is not None

    lines = code_lines = 0
    for number, line in enumerate(split_lines(code), start=1):
        stripped = line.strip()
        if stripped:
            lines += 1
            code_lines += not stripped.startswith("#") or number in in_string
    functions = len(func_decisions)
    return CodeMetrics(
        language="python",
        method="python-ast",
        lines=lines,
        code_lines=code_lines,
        functions=functions,
        classes=classes,
        cyclomatic_complexity=1 + decisions,
        max_function_complexity=1 + max(func_decisions) if func_decisions else 0,
        type_hint_coverage=hinted / hint_slots if functions else None,
        docstring_coverage=documented / (1 + classes + functions),
        parse_error=False,
    )
