"""IAM condition operators, pure: does one `Condition` block hold for a request context?

Every operator of the IAM reference ("IAM JSON policy elements: Condition operators",
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html) with its
`…IfExists` form, and the `ForAnyValue:` / `ForAllValues:` set qualifiers ("Single-valued vs. multivalued context
keys", https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html).

Rules encoded here, each from those pages:
- a key absent from the request context makes a condition false — except a negated operator (…Not…, NotIpAddress),
  which is then true, `…IfExists`, which is then true, and `Null`, which tests for absence;
- several values for one key are alternatives (OR); for a negated operator they are a NOR;
- `ForAllValues:` holds when every value of the request matches (and when the key is absent or empty);
  `ForAnyValue:` holds when at least one does (never when the key is absent).

Context values are strings, or lists of strings for multivalued keys (aws:TagKeys, aws:PrincipalServiceNamesList).
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

Context = Mapping[str, "str | Sequence[str]"]
Substitute = Callable[[str], "str | None"]


# What the variables `${*}` and `${?}` stand for: a literal asterisk and question mark, never wildcards.
LITERAL_STAR, LITERAL_QUESTION = "\ue000", "\ue001"
_LITERALS = {LITERAL_STAR: "*", LITERAL_QUESTION: "?"}


def literal(text: str) -> str:
    """A substituted value as plain text (its `${*}` / `${?}` back to the characters)."""
    return text.replace(LITERAL_STAR, "*").replace(LITERAL_QUESTION, "?")


@lru_cache(maxsize=8192)
def glob(pattern: str, case_sensitive: bool = True) -> re.Pattern[str]:
    """IAM's wildcards: `*` any run of characters, `?` one character; everything else literal."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(_LITERALS.get(c, c)) for c in pattern)
    return re.compile(f"^{body}$", re.DOTALL if case_sensitive else re.IGNORECASE | re.DOTALL)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _date(text: str) -> float | None:
    """ISO 8601 (with or without time and zone) or epoch seconds, as IAM's date operators accept them."""
    if re.fullmatch(r"-?\d+(\.\d+)?", text.strip()):
        return float(text)
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp()


def _compare(parse: Callable[[str], float | None], test: Callable[[float, float], bool]) -> Callable[[str, str], bool]:
    def compare(want: str, got: str) -> bool:
        w, g = parse(want), parse(got)
        return w is not None and g is not None and test(g, w)

    return compare


def _ip(want: str, got: str) -> bool:
    try:
        return ipaddress.ip_address(got.strip()) in ipaddress.ip_network(want.strip(), strict=False)
    except ValueError:
        return False


def arn_like(pattern: str, arn: str) -> bool:
    """ArnLike / ArnEquals: the ARN's six colon-separated parts are matched part by part, each with IAM's wildcards
    (the condition operators page, "Amazon Resource Name (ARN) condition operators"); the resource part keeps its
    own colons."""
    want, got = pattern.split(":", 5), arn.split(":", 5)
    if len(want) != 6 or len(got) != 6:
        return False
    return all(glob(w).match(g) for w, g in zip(want, got, strict=True))


def _binary(want: str, got: str) -> bool:
    try:
        return base64.b64decode(want, validate=True) == base64.b64decode(got, validate=True)
    except ValueError:
        return False


# The positive tests, want (from the policy) against got (from the request).
POSITIVE: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda want, got: got == want,
    "StringEqualsIgnoreCase": lambda want, got: got.lower() == want.lower(),
    "StringLike": lambda want, got: bool(glob(want).match(got)),
    "NumericEquals": _compare(_number, lambda g, w: g == w),
    "NumericLessThan": _compare(_number, lambda g, w: g < w),
    "NumericLessThanEquals": _compare(_number, lambda g, w: g <= w),
    "NumericGreaterThan": _compare(_number, lambda g, w: g > w),
    "NumericGreaterThanEquals": _compare(_number, lambda g, w: g >= w),
    "DateEquals": _compare(_date, lambda g, w: g == w),
    "DateLessThan": _compare(_date, lambda g, w: g < w),
    "DateLessThanEquals": _compare(_date, lambda g, w: g <= w),
    "DateGreaterThan": _compare(_date, lambda g, w: g > w),
    "DateGreaterThanEquals": _compare(_date, lambda g, w: g >= w),
    "Bool": lambda want, got: got.lower() == want.lower(),
    "BinaryEquals": _binary,
    "IpAddress": _ip,
    # "ArnEquals and ArnLike behave identically" (the same page).
    "ArnEquals": arn_like,
    "ArnLike": arn_like,
}
NEGATED: dict[str, str] = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "NumericNotEquals": "NumericEquals",
    "DateNotEquals": "DateEquals",
    "NotIpAddress": "IpAddress",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}
# Operators whose values may hold policy variables (the variables page: "string and ARN" operators).
TAKES_VARIABLES = {"StringEquals", "StringEqualsIgnoreCase", "StringLike", "ArnEquals", "ArnLike"}
QUALIFIERS = ("ForAnyValue", "ForAllValues")


def split_operator(operator: str) -> tuple[str | None, str, bool] | None:
    """(qualifier, base operator, IfExists) — None for an operator IAM does not know (MalformedPolicyDocument)."""
    qualifier, _, rest = operator.rpartition(":")
    if qualifier and qualifier not in QUALIFIERS:
        return None
    if_exists = rest.endswith("IfExists")
    base = rest.removesuffix("IfExists")
    if base == "Null":
        return (qualifier or None, base, False) if not if_exists else None
    if base not in POSITIVE and base not in NEGATED:
        return None
    return qualifier or None, base, if_exists


def as_values(element: Any) -> list[str]:
    """A policy's value or values as strings (IAM accepts booleans and numbers and compares their text)."""
    if element is None:
        return []
    items = element if isinstance(element, list) else [element]
    return ["true" if v is True else "false" if v is False else str(v) for v in items]


def lookup(context: Context, key: str) -> list[str] | None:
    """The request's values for a key (key names are case-insensitive); None when the key is absent."""
    found = context.get(key)
    if found is None:
        lowered = key.lower()
        found = next((v for k, v in context.items() if k.lower() == lowered), None)
    if found is None:
        return None
    return [found] if isinstance(found, str) else list(found)


def _one_value(base: str, wants: list[str], got: str) -> bool:
    if base in NEGATED:
        test = POSITIVE[NEGATED[base]]
        return not any(test(w, got) for w in wants)  # several values of a negated operator: NOR
    return any(POSITIVE[base](w, got) for w in wants)


def holds(operator: str, key: str, wanted: Any, context: Context, substitute: Substitute | None = None) -> bool:
    """One operator on one key. The operator is assumed valid (documents are validated when written)."""
    parts = split_operator(operator)
    if parts is None:
        raise ValueError(f"unknown condition operator {operator!r}")
    qualifier, base, if_exists = parts
    actual = lookup(context, key)
    if base == "Null":
        absent = actual is None or actual == []
        return absent == (as_values(wanted)[:1] == ["true"])
    wants = as_values(wanted)
    if substitute is not None and (base in TAKES_VARIABLES or NEGATED.get(base) in TAKES_VARIABLES):
        substituted = [substitute(v) for v in wants]
        glob_operator = base in ("StringLike", "StringNotLike", "ArnLike", "ArnNotLike", "ArnEquals", "ArnNotEquals")
        wants = [w if glob_operator else literal(w) for w in substituted if w is not None]
    if qualifier == "ForAllValues":
        return actual is None or all(_one_value(base, wants, got) for got in actual)
    if qualifier == "ForAnyValue":
        return actual is not None and any(_one_value(base, wants, got) for got in actual)
    if actual is None:
        return if_exists or base in NEGATED
    return any(_one_value(base, wants, got) for got in actual)
