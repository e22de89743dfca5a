"""A safe arithmetic evaluator: an AST allow-list, never ``eval``.

The expression comes from the user (through the tool selector or a model), so it is
untrusted. We parse it with ``ast`` and evaluate only numbers, the arithmetic operators,
a few math functions and constants. Everything else (names, attributes, subscripts,
calls to anything not listed) is refused with a message naming it.

Arithmetic can also be a denial of service: ``9**9**9`` has ~370 million digits. Before
each power, product or factorial we estimate the size of the result from the operands'
bit lengths and refuse it when it would exceed ``MAX_RESULT_BITS``, so refusal is
instant. Length and nesting depth are capped before parsing goes deep.
"""

from __future__ import annotations

import ast
import math
import operator
import unicodedata
from typing import Any, Callable

from studio_nb.errors import ToolError

MAX_EXPRESSION_CHARS = 300
MAX_DEPTH = 40
MAX_RESULT_BITS = 4096  # ~1233 decimal digits
SIGNIFICANT_DIGITS = 15

Number = int | float

CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}


def _log(x: Number, base: Number | None = None) -> float:
    return math.log(x) if base is None else math.log(x, base)


def _factorial(n: Number) -> int:
    if isinstance(n, float) and n.is_integer():
        n = int(n)
    if not isinstance(n, int) or n < 0:
        raise ToolError("factorial() needs a non-negative integer")
    if n > 450:  # 450! has ~3,600 bits; 451! exceeds MAX_RESULT_BITS
        raise ToolError(f"factorial({n}) is too large (limit 450)")
    return math.factorial(n)


# name -> (function, min args, max args)
FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int]] = {
    "sqrt": (math.sqrt, 1, 1), "exp": (math.exp, 1, 1), "log": (_log, 1, 2), "ln": (math.log, 1, 1),
    "log10": (math.log10, 1, 1), "log2": (math.log2, 1, 1),
    "sin": (math.sin, 1, 1), "cos": (math.cos, 1, 1), "tan": (math.tan, 1, 1),
    "asin": (math.asin, 1, 1), "acos": (math.acos, 1, 1), "atan": (math.atan, 1, 1),
    "degrees": (math.degrees, 1, 1), "radians": (math.radians, 1, 1),
    "abs": (abs, 1, 1), "round": (round, 1, 2), "floor": (math.floor, 1, 1), "ceil": (math.ceil, 1, 1),
    "min": (min, 2, 20), "max": (max, 2, 20), "hypot": (math.hypot, 1, 20), "factorial": (_factorial, 1, 1),
}

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}

# Unicode a user may type for arithmetic; NFKC already maps full-width digits/brackets.
_SYMBOLS = str.maketrans({"×": "*", "÷": "/", "−": "-", "–": "-", "·": "*", "^": "**"})


def normalize(expression: str) -> str:
    """Full-width to ASCII, ``×÷−`` to ``* / -``, ``^`` to ``**`` (what people mean by it)."""
    return unicodedata.normalize("NFKC", expression).translate(_SYMBOLS).strip()


def calculate(expression: str) -> Number:
    """Evaluate an arithmetic expression such as ``(3+4)**2`` or ``sqrt(2)*pi``."""
    if not isinstance(expression, str):
        raise ToolError(f"expression must be a string, got {type(expression).__name__}")
    text = normalize(expression)
    if not text:
        raise ToolError("empty expression; give one like '17*23'")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ToolError(f"expression is {len(text)} characters long; the limit is {MAX_EXPRESSION_CHARS}")
    if _bracket_depth(text) > MAX_DEPTH:
        raise ToolError(f"expression is nested more than {MAX_DEPTH} levels deep")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError) as exc:
        raise ToolError(f"not an arithmetic expression: {text!r} ({getattr(exc, 'msg', exc)})") from None
    except (RecursionError, MemoryError):
        raise ToolError(f"expression is nested more than {MAX_DEPTH} levels deep") from None
    if _tree_depth(tree.body) > MAX_DEPTH:
        raise ToolError(f"expression is nested more than {MAX_DEPTH} levels deep")
    try:
        value = _eval(tree.body)
    except ZeroDivisionError:
        raise ToolError(f"division by zero in {text!r}") from None
    except OverflowError:
        raise ToolError(f"result of {text!r} is too large") from None
    except (ValueError, TypeError) as exc:
        raise ToolError(f"math error in {text!r}: {exc}") from None
    return _tidy(value)


def _eval(node: ast.AST) -> Number:
    if isinstance(node, ast.Constant):
        if type(node.value) in (int, float):
            return node.value
        raise ToolError(f"only numbers are allowed, not {node.value!r}")
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        _check_size(node.op, left, right)
        value = _BINARY[type(node.op)](left, right)
        if isinstance(value, complex):
            raise ToolError(f"{ast.unparse(node)} has a complex result; only real numbers are supported")
        return value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.Name):
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        raise ToolError(f"name {node.id!r} is not allowed; constants: {', '.join(CONSTANTS)}")
    if isinstance(node, ast.Call):
        return _call(node)
    if isinstance(node, ast.Attribute):
        raise ToolError("attribute access (a.b) is not allowed in an arithmetic expression")
    if isinstance(node, ast.BinOp):
        raise ToolError(f"operator {type(node.op).__name__} is not allowed; use + - * / // % ** (^ means power)")
    raise ToolError(f"{type(node).__name__} is not allowed in an arithmetic expression")


def _call(node: ast.Call) -> Number:
    if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
        shown = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
        raise ToolError(f"function {shown!r} is not allowed; allowed: {', '.join(FUNCTIONS)}")
    if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
        raise ToolError(f"{node.func.id}() takes plain positional numbers only")
    fn, lo, hi = FUNCTIONS[node.func.id]
    if not lo <= len(node.args) <= hi:
        want = str(lo) if lo == hi else f"{lo} to {hi}"
        raise ToolError(f"{node.func.id}() takes {want} argument(s), got {len(node.args)}")
    args = [_eval(a) for a in node.args]
    if node.func.id == "round" and len(args) == 2:
        if not isinstance(args[1], int) or abs(args[1]) > 100:
            raise ToolError("round(x, n) needs an integer n between -100 and 100")
    return fn(*args)


def _check_size(op: ast.operator, left: Number, right: Number) -> None:
    """Refuse an int operation whose result would exceed MAX_RESULT_BITS, before doing it.

    Float operations are O(1) and overflow on their own (OverflowError or inf, both
    reported), so only exact integers need an estimate."""
    if isinstance(op, ast.Pow):
        if isinstance(right, int) and right > 0 and isinstance(left, int) and abs(left) > 1:
            if right * math.log2(abs(left)) > MAX_RESULT_BITS:
                raise ToolError(f"{left}**{right} is too large (over {MAX_RESULT_BITS} bits)")
    elif isinstance(op, ast.Mult) and isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > MAX_RESULT_BITS:
            raise ToolError(f"product is too large (over {MAX_RESULT_BITS} bits)")


def _tidy(value: Any) -> Number:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ToolError(f"result is not a number: {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ToolError(f"result is not finite ({value})")
        return float(f"{value:.{SIGNIFICANT_DIGITS}g}")  # 0.1+0.2 -> 0.3, not 0.30000000000000004
    return value


def _bracket_depth(text: str) -> int:
    depth = best = 0
    for ch in text:
        if ch in "([{":
            depth += 1
            best = max(best, depth)
        elif ch in ")]}":
            depth -= 1
    return best


def _tree_depth(node: ast.AST) -> int:
    stack, best = [(node, 1)], 0
    while stack:
        cur, d = stack.pop()
        best = max(best, d)
        stack.extend((child, d + 1) for child in ast.iter_child_nodes(cur))
    return best
