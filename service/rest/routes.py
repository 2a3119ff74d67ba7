"""REST routes compiled from the ``google.api.http`` annotations of the pipeline's methods.

Every ``HttpRule`` and each of its ``additional_bindings`` compiles once, at
start-up, into a :class:`Binding` with a :class:`PathTemplate`
(``Template = "/" Segments [":" Verb]``; segments ``*``, ``**``, literals,
``{field}`` and ``{field=segments}``). No route is known by hand: an RPC that
gains an annotation gains its route.

Matching works on the *raw* request path: aiohttp's ``request.path`` is already
percent-decoded, which would turn ``%2F`` inside a DN into a separator. The raw
path is split on ``/`` and each segment is unquoted exactly once. A ``:verb``
suffix is split off the last segment only when it names a verb some binding
declares, because serials (``AB:CD``) and DNs carry colons; a binding without a
verb matches the unsplit path, as grpc-gateway does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote

from google.api import annotations_pb2

from service.api.pipeline import MethodSpec
from service.rest.fields import FieldPathError, is_map, is_message, is_url_scalar, resolve_field_path
from service.rest.refusals import Refusal

__all__ = [
    "Binding",
    "PathTemplate",
    "RouteError",
    "RouteMatch",
    "RouteTable",
    "TemplateVariable",
    "bindings_of",
    "parse_template",
]

SegmentKind = Literal["literal", "one", "rest"]  # a literal, `*`, `**`


class RouteError(ValueError):
    """An annotation the shim cannot serve (bad template, unknown field, duplicate route).

    Raised at start-up, so a broken contract never reaches a listener.
    """


@dataclass(frozen=True)
class TemplateVariable:
    """``{field.path=...}``: captures segments ``start`` up to ``end`` (``None``: to the end)."""

    field_path: tuple[str, ...]  # proto field names
    start: int
    end: int | None
    multi: bool  # may capture more than one segment: `/` stays a separator and `%2F` stays encoded

    @property
    def name(self) -> str:
        return ".".join(self.field_path)


@dataclass(frozen=True)
class PathTemplate:
    """A compiled path template of ``google.api.http``."""

    text: str
    segments: tuple[tuple[SegmentKind, str], ...]
    variables: tuple[TemplateVariable, ...]
    verb: str | None

    @property
    def priority(self) -> tuple[tuple[int, ...], bool]:
        """Literals beat `*`, which beats `**`; a verb beats none. Decides overlapping templates."""
        rank = {"literal": 2, "one": 1, "rest": 0}
        return tuple(rank[kind] for kind, _ in self.segments), self.verb is not None

    def match(self, raw: Sequence[str], decoded: Sequence[str]) -> dict[str, str] | None:
        """Variable values (dotted proto path → value) when the segments match, else ``None``."""
        fixed = len(self.segments) - (1 if self.segments and self.segments[-1][0] == "rest" else 0)
        if len(decoded) < fixed or (fixed == len(self.segments) and len(decoded) != fixed):
            return None
        for position, (kind, literal) in enumerate(self.segments):
            if kind == "literal" and decoded[position] != literal:
                return None
            if kind == "one" and not decoded[position]:
                return None  # `*` needs a non-empty segment: `/cas//status` is no CA
        values: dict[str, str] = {}
        for variable in self.variables:
            if variable.multi:
                values[variable.name] = "/".join(_unquote_keeping_slashes(part)
                                                 for part in raw[variable.start:variable.end])
            else:
                values[variable.name] = decoded[variable.start]
        return values

    def openapi_path(self, json_name: Mapping[str, str]) -> str:
        """The template in OpenAPI form, each variable named by ``json_name[dotted path]``."""
        parts: list[str] = []
        by_start = {v.start: v for v in self.variables}
        position = 0
        while position < len(self.segments):
            variable = by_start.get(position)
            if variable is not None:
                parts.append("{" + json_name[variable.name] + "}")
                end = len(self.segments) if variable.end is None else variable.end
                position = end
                continue
            kind, literal = self.segments[position]
            parts.append(literal if kind == "literal" else "{" + f"segment{position}" + "}")
            position += 1
        return "/" + "/".join(parts) + (f":{self.verb}" if self.verb else "")


def _unquote_keeping_slashes(part: str) -> str:
    # http.proto: multi-segment variables leave `%2F` encoded, so a captured `/` stays distinguishable.
    pieces = part.replace("%2f", "%2F").split("%2F")
    return "%2F".join(unquote(piece, errors="strict") for piece in pieces)


def _split_verb(template: str) -> tuple[str, str | None]:
    depth = 0
    last_slash = colon = -1
    for index, char in enumerate(template):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif depth == 0 and char == "/":
            last_slash = index
        elif depth == 0 and char == ":":
            colon = index
    if colon > last_slash:
        return template[:colon], template[colon + 1:]
    return template, None


def _split_segments(text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current = ""
    for char in text:
        if char == "{":
            depth += 1
            if depth > 1:
                raise RouteError(f"nested variables in {text!r}")
        elif char == "}":
            depth -= 1
            if depth < 0:
                raise RouteError(f"unbalanced '}}' in {text!r}")
        if char == "/" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if depth != 0:
        raise RouteError(f"unclosed '{{' in {text!r}")
    parts.append(current)
    return parts


def _plain_segment(text: str, template: str) -> tuple[SegmentKind, str]:
    if text == "*":
        return "one", ""
    if text == "**":
        return "rest", ""
    if not text or any(c in text for c in "{}*=:"):
        raise RouteError(f"bad segment {text!r} in {template!r}")
    return "literal", text


def parse_template(template: str) -> PathTemplate:
    """Compile one path template; raises :class:`RouteError` when it breaks the grammar."""
    if not template.startswith("/"):
        raise RouteError(f"template {template!r} must start with '/'")
    body, verb = _split_verb(template)
    if verb is not None and (not verb or any(c in verb for c in "/{}*:")):
        raise RouteError(f"bad verb {verb!r} in {template!r}")
    segments: list[tuple[SegmentKind, str]] = []
    variables: list[TemplateVariable] = []
    for text in _split_segments(body[1:]):
        if text.startswith("{") and text.endswith("}"):
            inner = text[1:-1]
            name, _, sub = inner.partition("=")
            path = tuple(name.split("."))
            if not all(p.isidentifier() for p in path):
                raise RouteError(f"bad variable {text!r} in {template!r}")
            start = len(segments)
            captured = [_plain_segment(s, template) for s in (sub.split("/") if sub else ["*"])]
            segments.extend(captured)
            has_rest = any(kind == "rest" for kind, _ in captured)
            variables.append(TemplateVariable(field_path=path, start=start,
                                              end=None if has_rest else len(segments),
                                              multi=has_rest or len(captured) > 1))
        else:
            segments.append(_plain_segment(text, template))
    for position, (kind, _) in enumerate(segments):
        if kind == "rest" and position != len(segments) - 1:
            raise RouteError(f"'**' must be the last segment in {template!r}")
    names = [v.name for v in variables]
    if len(set(names)) != len(names):
        raise RouteError(f"a field is bound twice in {template!r}")
    return PathTemplate(text=template, segments=tuple(segments), variables=tuple(variables), verb=verb)


@dataclass(frozen=True)
class Binding:
    """One HTTP binding of one method: ``POST /v1/...{ca_id}/enrollments`` with ``body: "*"``."""

    spec: MethodSpec
    http_method: str
    template: PathTemplate
    body: str  # "" (none), "*" (whole request) or a top-level field name
    response_body: str  # "" (whole response) or a top-level field name
    index: int  # 0 for the rule itself, n for additional_bindings[n - 1]
    path: str = field(default="")  # the full path pattern including the context path

    @property
    def path_fields(self) -> frozenset[str]:
        return frozenset(v.name for v in self.template.variables)


def _check_binding(binding: Binding) -> None:
    request = binding.spec.descriptor.input_type
    response = binding.spec.descriptor.output_type
    where = f"{binding.spec.full_name} ({binding.http_method} {binding.template.text})"
    for variable in binding.template.variables:
        try:
            leaf = resolve_field_path(request, variable.field_path)[-1]
        except FieldPathError as exc:
            raise RouteError(f"{where}: path variable {exc}") from exc
        if leaf.is_repeated or not is_url_scalar(leaf):
            raise RouteError(f"{where}: path variable {variable.name} must be a singular scalar field")
    if binding.body not in ("", "*"):
        body = request.fields_by_name.get(binding.body)
        if body is None or (body.is_repeated and not is_map(body)):
            raise RouteError(f"{where}: body {binding.body!r} must be a top-level, non-repeated field")
        if any(v.field_path[0] == binding.body for v in binding.template.variables):
            raise RouteError(f"{where}: body field {binding.body!r} is also bound by the path")
    if binding.response_body:
        if binding.response_body not in response.fields_by_name:
            raise RouteError(f"{where}: response_body {binding.response_body!r} is not a response field")
    if binding.spec.server_streaming and binding.response_body and not is_message(
            response.fields_by_name[binding.response_body]):
        raise RouteError(f"{where}: a streamed response_body must be a message")


def bindings_of(spec: MethodSpec, *, context_path: str = "") -> list[Binding]:
    """The bindings declared on one method (none when it has no ``google.api.http``)."""
    rule = spec.descriptor.GetOptions().Extensions[annotations_pb2.http]
    if rule.WhichOneof("pattern") is None:
        return []
    result: list[Binding] = []
    for index, each in enumerate([rule, *rule.additional_bindings]):
        kind = each.WhichOneof("pattern")
        if kind is None:
            raise RouteError(f"{spec.full_name}: additional binding {index} has no pattern")
        if kind == "custom":
            http_method, text = each.custom.kind.upper(), each.custom.path
        else:
            http_method, text = kind.upper(), getattr(each, kind)
        try:
            template = parse_template(text)
        except RouteError as exc:
            raise RouteError(f"{spec.full_name}: {exc}") from exc
        binding = Binding(spec=spec, http_method=http_method, template=template, body=each.body,
                          response_body=each.response_body, index=index, path=context_path + text)
        _check_binding(binding)
        result.append(binding)
    return result


@dataclass(frozen=True)
class RouteMatch:
    """The binding a request resolved to and its path variables (dotted proto path → value)."""

    binding: Binding
    path_values: dict[str, str]


class RouteTable:
    """Every binding of every method, with the context path in front.

    Example::

        table = RouteTable.from_methods(pipeline.methods(), context_path="/cagw")
        match = table.resolve("GET", "/cagw/v1/certificate-authorities/CA1")
    """

    def __init__(self, bindings: Sequence[Binding], *, context_path: str = "") -> None:
        self.context_path = context_path.rstrip("/")
        self.bindings = tuple(bindings)
        self.verbs = frozenset(b.template.verb for b in self.bindings if b.template.verb)
        seen: dict[tuple[object, ...], Binding] = {}
        for binding in self.bindings:
            key = (binding.http_method, binding.template.segments, binding.template.verb)
            if key in seen:
                raise RouteError(f"{binding.http_method} {binding.template.text} is bound by both "
                                 f"{seen[key].spec.full_name} and {binding.spec.full_name}")
            seen[key] = binding

    @classmethod
    def from_methods(cls, methods: Iterable[MethodSpec], *, context_path: str = "") -> RouteTable:
        prefix = context_path.rstrip("/")
        return cls([b for spec in methods for b in bindings_of(spec, context_path=prefix)], context_path=prefix)

    def resolve(self, http_method: str, raw_path: str) -> RouteMatch:
        """The binding for a raw (still percent-encoded) path without its query.

        Raises :class:`Refusal`: 404 when no template matches, 405 (with ``Allow``)
        when only other HTTP methods match, 400 when a segment is not valid UTF-8.
        """
        if not raw_path.startswith(self.context_path + "/"):
            raise Refusal.not_found(raw_path)
        raw = raw_path[len(self.context_path) + 1:].split("/")
        decoded = _decode(raw)
        # The verb-split view of the path, used only by bindings that declare a verb.
        last = raw[-1]
        colon = last.rfind(":")
        verb = last[colon + 1:] if colon >= 0 else None
        if verb is not None and verb in self.verbs:
            raw_split = [*raw[:-1], last[:colon]]
            split: tuple[list[str], list[str]] | None = (raw_split, _decode(raw_split))
        else:
            split = None
        candidates: list[RouteMatch] = []
        for binding in self.bindings:
            template = binding.template
            if template.verb is not None:
                if split is None or template.verb != verb:
                    continue
                values = template.match(*split)
            else:
                values = template.match(raw, decoded)
            if values is not None:
                candidates.append(RouteMatch(binding=binding, path_values=values))
        chosen = [c for c in candidates if c.binding.http_method == http_method]
        if chosen:
            return max(chosen, key=lambda c: c.binding.template.priority)
        if candidates:
            raise Refusal.method_not_allowed(http_method, sorted({c.binding.http_method for c in candidates}))
        raise Refusal.not_found(raw_path)


def _decode(raw: Sequence[str]) -> list[str]:
    try:
        return [unquote(part, errors="strict") for part in raw]
    except UnicodeDecodeError as exc:
        raise Refusal.invalid("request path is not valid percent-encoded UTF-8") from exc
