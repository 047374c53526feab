"""Policy documents, pure: their statements, their variables, and the checks IAM makes before it stores one.

- Variables ("IAM policy elements: Variables and tags",
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html): only documents of Version
  2012-10-17 have them (in older ones `${…}` is literal text); `${key}` takes the request's value of the key (key
  names case-insensitive), `${key, 'default'}` a default when the key is absent; `${*}`, `${?}` and `${$}` are the
  literal characters; a variable with no value and no default matches nothing.
- Validation: IAM refuses a document it cannot read with MalformedPolicyDocument ("IAM JSON policy element
  reference" and "Grammar of the IAM JSON policy language",
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html), so the evaluator never guesses
  what an unknown Effect or operator means.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

from orderflow.iam.conditions import LITERAL_QUESTION, LITERAL_STAR, Context, lookup, split_operator

MODERN = "2012-10-17"
VERSIONS = ("2008-10-17", MODERN)
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_DEFAULTED = re.compile(r"^\s*([^,\s]+)\s*,\s*'((?:[^']|'')*)'\s*$")
_LITERALS = {"*": LITERAL_STAR, "?": LITERAL_QUESTION, "$": "$"}
Kind = Literal["identity", "resource", "trust"]


class MalformedPolicy(ValueError):
    """What IAM answers a document it will not store with (error code MalformedPolicyDocument)."""


def statements(policy: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    found = (policy or {}).get("Statement", [])
    return [s for s in (found if isinstance(found, list) else [found]) if isinstance(s, Mapping)]


def has_variables(policy: Mapping[str, Any] | None) -> bool:
    return (policy or {}).get("Version") == MODERN


def substituter(context: Context) -> Callable[[str], str | None]:
    """Replace a value's variables from the request context; None when one has no value and no default."""

    def substitute(text: str) -> str | None:
        if "${" not in text:
            return text
        missing = False

        def one(match: re.Match[str]) -> str:
            nonlocal missing
            inner = match.group(1)
            if inner in _LITERALS:
                return _LITERALS[inner]
            defaulted = _DEFAULTED.match(inner)
            key, default = (defaulted.group(1), defaulted.group(2).replace("''", "'")) if defaulted else (inner, None)
            values = lookup(context, key.strip())
            if values is not None and len(values) == 1:  # a multivalued key is never a variable's value
                return values[0]
            if default is None:
                missing = True
                return ""
            return default

        replaced = _VARIABLE.sub(one, text)
        return None if missing else replaced

    return substitute


def _as_list(element: Any) -> list[Any]:
    return element if isinstance(element, list) else [element]


def _check_statement(statement: Any, kind: Kind) -> None:
    if not isinstance(statement, Mapping):
        raise MalformedPolicy("Syntax errors in policy.")
    known = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Principal", "NotPrincipal"}
    unknown = set(statement) - known - {"Condition"}
    if unknown:
        raise MalformedPolicy(f"Syntax errors in policy. Unknown field {sorted(unknown)[0]}")
    if statement.get("Effect") not in ("Allow", "Deny"):  # case-sensitive: "deny" is not an effect
        raise MalformedPolicy(f"Invalid effect: {statement.get('Effect')}")
    if ("Action" in statement) == ("NotAction" in statement):
        raise MalformedPolicy("Policy statement must contain actions." if "Action" not in statement else
                              "Syntax errors in policy.")  # fmt: skip
    for action in _as_list(statement.get("Action", statement.get("NotAction"))):
        if not isinstance(action, str) or (action != "*" and ":" not in action):
            raise MalformedPolicy(
                f"Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.: {action}"
            )
    if "Resource" in statement and "NotResource" in statement:
        raise MalformedPolicy("Syntax errors in policy.")
    principal = "Principal" in statement or "NotPrincipal" in statement
    if kind == "identity":
        if principal:
            raise MalformedPolicy("Policy document should not specify a principal.")
        if "Resource" not in statement and "NotResource" not in statement:
            raise MalformedPolicy("Policy statement must contain resources.")
    elif not principal:
        raise MalformedPolicy("Missing required field Principal")
    _check_conditions(statement.get("Condition"))


def _check_conditions(conditions: Any) -> None:
    if conditions is None:
        return
    if not isinstance(conditions, Mapping):
        raise MalformedPolicy("Syntax errors in policy.")
    for operator, keys in conditions.items():
        if split_operator(str(operator)) is None:
            raise MalformedPolicy(f"Invalid Condition type : {operator}.")
        if not isinstance(keys, Mapping):
            raise MalformedPolicy("Syntax errors in policy.")
        for values in keys.values():
            if any(isinstance(v, Mapping | list) for v in _as_list(values)):
                raise MalformedPolicy("Syntax errors in policy.")


def validate(document: Any, kind: Kind = "identity") -> dict[str, Any]:
    """The document as IAM would store it, or MalformedPolicy with IAM's message."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            raise MalformedPolicy("Syntax errors in policy.") from None
    if not isinstance(document, dict):
        raise MalformedPolicy("Syntax errors in policy.")
    if "Version" in document and document["Version"] not in VERSIONS:
        raise MalformedPolicy("The policy failed legacy parsing")
    if "Statement" not in document or document["Statement"] in ([], None):
        raise MalformedPolicy("Syntax errors in policy.")
    for statement in _as_list(document["Statement"]):
        _check_statement(statement, kind)
    return document
