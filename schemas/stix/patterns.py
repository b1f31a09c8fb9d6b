"""STIX 2.1 indicator patterns -> the observables they name, when they only name some.

A pattern is represented when it is made of equality comparisons joined by ``AND``/``OR``,
inside and across observation expressions: ``[ipv4-addr:value = '198.51.100.1'] OR
[domain-name:value = 'example.com' AND domain-name:resolves_to_refs[*].value = '...']``.
``observables`` turns such a pattern into its disjunctive normal form: a tuple of
conjunctions, each the comparisons one observed object (and the objects it references) must
match. Anything else (other operators, ``NOT``, ``FOLLOWEDBY``, qualifiers such as ``WITHIN``)
is ``pattern_too_complex``; a pattern that does not parse is ``invalid_pattern``.

stix2-patterns (the OASIS parser) decides. Parsing with it costs about 0.7 ms a pattern, more
than the rest of a bundle's conversion together, so a small parser of the equality subset
reads the common case first and hands everything it does not fully understand to
stix2-patterns; the tests check that both give the same answer for every pattern of the real
files and for generated ones.
"""

from __future__ import annotations

import re
from itertools import product
from typing import Any, Final, NamedTuple

from stix2patterns.exceptions import ParseException
from stix2patterns.v21.grammars.STIXPatternParser import STIXPatternParser as P
from stix2patterns.v21.pattern import Pattern

PathStep = str | int
"""A path component: a property name, a list index, or ``"*"`` (any index)."""

MAX_CONJUNCTIONS: Final = 1000
"""Conjunctions a pattern may expand to; more is ``pattern_too_complex``."""


class Comparison(NamedTuple):
    """``object_type:path = value``; ``value`` is the literal as text (numbers in decimal).
    (A named tuple: thousands are made per bundle, and a tuple is the cheapest to make.)"""

    object_type: str
    path: tuple[PathStep, ...]
    value: str


Conjunction = tuple[Comparison, ...]


class PatternProblem(ValueError):
    """A pattern that cannot be represented: ``code`` is ``pattern_too_complex`` or
    ``invalid_pattern``, the message says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def observables(pattern: str) -> tuple[Conjunction, ...]:
    """The conjunctions of an equality pattern (see the module docstring); raises
    ``PatternProblem`` for any other pattern."""
    try:
        fast = _fast_observables(pattern)
        if fast is not None:
            return fast
        return reference_observables(pattern)
    except RecursionError:
        raise _too_complex("parentheses nested too deeply") from None


# ---- the reference: stix2-patterns' parse tree --------------------------------------------


def reference_observables(pattern: str) -> tuple[Conjunction, ...]:
    """``observables`` computed from stix2-patterns' parse tree alone."""
    try:
        tree = Pattern(pattern).visit(_TreeOf())
    except ParseException as exc:
        raise PatternProblem("invalid_pattern", f"the pattern does not parse: {exc}") from None
    return tuple(_observations(tree.observationExpressions()))


class _TreeOf:
    """A "visitor" that returns the parse tree it is given: ``Pattern.visit`` is the public
    way to the tree."""

    def visit(self, tree: Any) -> Any:
        return tree


def _too_complex(what: str) -> PatternProblem:
    return PatternProblem(
        "pattern_too_complex",
        f"the pattern uses {what}; only equality comparisons joined by AND/OR are represented",
    )


def _observations(ctx: Any) -> list[Conjunction]:
    """Every conjunction of an observation expression tree (observations are alternatives)."""
    if isinstance(ctx, P.ObservationExpressionsContext):
        if ctx.FOLLOWEDBY():
            raise _too_complex("FOLLOWEDBY")
        children = ctx.observationExpressions()
        if children:
            return [c for child in children for c in _observations(child)]
        return _observations(ctx.observationExpressionOr())
    if isinstance(ctx, P.ObservationExpressionOrContext):
        children = ctx.observationExpressionOr()
        if children:
            return [c for child in children for c in _observations(child)]
        return _observations(ctx.observationExpressionAnd())
    if isinstance(ctx, P.ObservationExpressionAndContext):
        children = ctx.observationExpressionAnd()
        if children:
            return [c for child in children for c in _observations(child)]
        return _observations(ctx.observationExpression())
    if isinstance(ctx, P.ObservationExpressionSimpleContext):
        return _comparisons(ctx.comparisonExpression())
    if isinstance(ctx, P.ObservationExpressionCompoundContext):
        return _observations(ctx.observationExpressions())
    raise _too_complex("a qualifier (WITHIN, REPEATS or START/STOP)")


def _comparisons(ctx: Any) -> list[Conjunction]:
    """The disjunctive normal form of a comparison expression."""
    if isinstance(ctx, P.ComparisonExpressionContext):
        children = ctx.comparisonExpression()
        if children:
            return _bounded([c for child in children for c in _comparisons(child)])
        return _comparisons(ctx.comparisonExpressionAnd())
    if isinstance(ctx, P.ComparisonExpressionAndContext):
        children = ctx.comparisonExpressionAnd()
        if children:
            parts = [_comparisons(child) for child in children]
            return _bounded([sum(combo, ()) for combo in product(*parts)])
        return _comparisons(ctx.propTest())
    if isinstance(ctx, P.PropTestParenContext):
        return _comparisons(ctx.comparisonExpression())
    if isinstance(ctx, P.PropTestEqualContext):
        if ctx.NOT() or ctx.NEQ():
            raise _too_complex("a negated comparison")
        literal = ctx.primitiveLiteral()
        return [(Comparison(*_object_path(ctx.objectPath()), _literal(literal)),)]
    raise _too_complex(_OPERATORS.get(type(ctx).__name__, "an operator other than ="))


_OPERATORS = {
    "PropTestRegexContext": "the MATCHES operator",
    "PropTestLikeContext": "the LIKE operator",
    "PropTestOrderContext": "an order comparison (<, <=, >, >=)",
    "PropTestSetContext": "the IN operator",
    "PropTestIsSubsetContext": "the ISSUBSET operator",
    "PropTestIsSupersetContext": "the ISSUPERSET operator",
    "PropTestExistsContext": "the EXISTS operator",
}


def _bounded(conjunctions: list[Conjunction]) -> list[Conjunction]:
    if len(conjunctions) > MAX_CONJUNCTIONS:
        raise _too_complex(f"more than {MAX_CONJUNCTIONS} alternatives")
    return conjunctions


def _object_path(ctx: Any) -> tuple[str, tuple[PathStep, ...]]:
    first = ctx.firstPathComponent()
    steps: list[PathStep] = [
        _unquote(first.StringLiteral().getText()) if first.StringLiteral() else first.getText()
    ]
    component = ctx.objectPathComponent()
    pending = [component] if component is not None else []
    while pending:
        node = pending.pop(0)
        if isinstance(node, P.PathStepContext):
            pending[:0] = node.objectPathComponent()
        elif isinstance(node, P.KeyPathStepContext):
            literal = node.StringLiteral()
            steps.append(
                _unquote(literal.getText()) if literal else node.IdentifierWithoutHyphen().getText()
            )
        elif node.ASTERISK():
            steps.append("*")
        else:
            steps.append(int((node.IntPosLiteral() or node.IntNegLiteral()).getText()))
    return ctx.objectType().getText(), tuple(steps)


def _literal(ctx: Any) -> str:
    text: str = ctx.getText()
    orderable = ctx.orderableLiteral()
    if orderable is None:  # a boolean
        return text
    if orderable.StringLiteral():
        return _unquote(text)
    if orderable.IntPosLiteral() or orderable.IntNegLiteral():
        return str(int(text))
    if orderable.FloatPosLiteral() or orderable.FloatNegLiteral():
        return text
    raise _too_complex("a binary, hex or timestamp literal")


_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


def _unquote(literal: str) -> str:
    inner = literal[1:-1]
    return _ESCAPE.sub(r"\1", inner) if "\\" in inner else inner


# ---- the fast path: the equality subset ---------------------------------------------------

_QUOTED = r"'(?:[^'\\]|\\['\\])*'"
_STEP = rf"(?:[A-Za-z_][A-Za-z0-9_]*|{_QUOTED})"
_TOKEN = re.compile(
    rf"\s*(?:(?P<c>[A-Za-z_][A-Za-z0-9_-]*)\s*:\s*(?P<path>{_STEP}(?:\s*\.\s*{_STEP}"
    rf"|\s*\[\s*(?:\*|0|[1-9][0-9]*)\s*\])*)\s*=\s*(?P<v>{_QUOTED}|-?(?:0|[1-9][0-9]*)(?![0-9.eE]))"
    r"|(?P<t>AND\b|OR\b|[\[\]()])|(?P<x>\S))"
)
_PATH_STEP = re.compile(rf"\s*(?:\.\s*)?(?:({_STEP})|\[\s*(\*|0|[1-9][0-9]*)\s*\])")
_PATHS: dict[str, tuple[PathStep, ...]] = {}


class _Unsupported(Exception):
    """The fast parser met something outside its subset: let stix2-patterns decide."""


def _fast_observables(pattern: str) -> tuple[Conjunction, ...] | None:
    """``observables`` of a pattern in the equality subset, or None for any other pattern
    (including every invalid one: the reference parser words the error)."""
    tokens: list[str | Comparison] = []
    for object_type, path, value, token, other in _TOKEN.findall(pattern):
        if other:
            return None
        if token:
            tokens.append(token)
            continue
        if object_type in ("AND", "OR"):
            return None
        literal = _unquote(value) if value[0] == "'" else str(int(value))
        tokens.append(Comparison(object_type, _path(path), literal))
    parser = _Parser(tokens)
    try:
        result = parser.observations()
    except (_Unsupported, IndexError):
        return None
    if parser.position != len(tokens):
        return None
    return tuple(result)


def _path(text: str) -> tuple[PathStep, ...]:
    found = _PATHS.get(text)
    if found is None:
        steps: list[PathStep] = []
        for name, index in _PATH_STEP.findall(text):
            if name:
                steps.append(_unquote(name) if name[0] == "'" else name)
            else:
                steps.append("*" if index == "*" else int(index))
        found = tuple(steps)
        if len(_PATHS) < 10_000:  # a bounded cache: publishers use few distinct paths
            _PATHS[text] = found
    return found


class _Parser:
    """Recursive descent over the equality subset of the STIX pattern grammar; comparisons
    arrive as single tokens."""

    def __init__(self, tokens: list[str | Comparison]) -> None:
        self.tokens = tokens
        self.position = 0

    def _take(self, text: str) -> None:
        if self.tokens[self.position] != text:
            raise _Unsupported
        self.position += 1

    def _keyword(self, word: str) -> bool:
        if self.position < len(self.tokens) and self.tokens[self.position] == word:
            self.position += 1
            return True
        return False

    def observations(self) -> list[Conjunction]:
        found = self._observation()
        while self._keyword("AND") or self._keyword("OR"):
            found += self._observation()
        return found

    def _observation(self) -> list[Conjunction]:
        if self.tokens[self.position] == "(":
            self.position += 1
            found = self.observations()
            self._take(")")
            return found
        self._take("[")
        found = self._comparison_or()
        self._take("]")
        return found

    def _comparison_or(self) -> list[Conjunction]:
        found = self._comparison_and()
        while self._keyword("OR"):
            found = found + self._comparison_and()
            if len(found) > MAX_CONJUNCTIONS:
                raise _Unsupported
        return found

    def _comparison_and(self) -> list[Conjunction]:
        found = self._comparison()
        while self._keyword("AND"):
            right = self._comparison()
            found = [left + other for left in found for other in right]
            if len(found) > MAX_CONJUNCTIONS:
                raise _Unsupported
        return found

    def _comparison(self) -> list[Conjunction]:
        token = self.tokens[self.position]
        self.position += 1
        if isinstance(token, Comparison):
            return [(token,)]
        if token != "(":
            raise _Unsupported
        found = self._comparison_or()
        self._take(")")
        return found
