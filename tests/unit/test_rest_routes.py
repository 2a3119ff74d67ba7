"""Route compilation, matching and request transcoding of the REST shim, on a synthetic service.

The synthetic ``resttest.v1.ThingService`` exercises what the contract does not
use yet (``**``, ``{field=segments}``, nested path fields, ``additional_bindings``,
``body: "field"``, ``response_body``, custom methods), which is the point: the
shim must serve any annotation, not the contract's routes only.
"""

from __future__ import annotations

from typing import Any

import pytest
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from openapi_spec_validator import validate

from cagw.v1 import options_pb2
from service.api.pipeline import MethodSpec
from service.rest.openapi import build_openapi
from service.rest.refusals import Refusal
from service.rest.routes import RouteError, RouteTable, bindings_of, parse_template
from service.rest.transcode import build_request

F = descriptor_pb2.FieldDescriptorProto
R = http_pb2.HttpRule


def _field(message: Any, name: str, number: int, kind: int, *, json: str | None = None,
           repeated: bool = False, type_name: str = "") -> None:
    field = message.field.add(name=name, number=number, type=kind, json_name=json or name,
                              label=F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL)
    if type_name:
        field.type_name = type_name


def _build_file(name: str, methods: list[tuple[str, Any, bool]]) -> ServiceDescriptor:
    package = name.replace("/", "_").replace(".proto", "")
    fdp = descriptor_pb2.FileDescriptorProto(
        name=f"resttest/{name}", package=f"resttest.{package}", syntax="proto3",
        dependency=["google/api/annotations.proto", "google/protobuf/duration.proto", "cagw/v1/options.proto"])
    p = f".resttest.{package}"
    color = fdp.enum_type.add(name="Color")
    for number, value in enumerate(["COLOR_UNSPECIFIED", "RED", "BLUE"]):
        color.value.add(name=value, number=number)
    inner = fdp.message_type.add(name="Inner")
    _field(inner, "name", 1, F.TYPE_STRING)
    _field(inner, "size", 2, F.TYPE_INT32)
    request = fdp.message_type.add(name="ThingRequest")
    _field(request, "id", 1, F.TYPE_STRING)
    _field(request, "parent", 2, F.TYPE_STRING)
    _field(request, "inner", 3, F.TYPE_MESSAGE, type_name=f"{p}.Inner")
    _field(request, "color", 4, F.TYPE_ENUM, type_name=f"{p}.Color")
    _field(request, "sizes", 5, F.TYPE_INT32, repeated=True)
    _field(request, "flag", 6, F.TYPE_BOOL)
    _field(request, "big", 7, F.TYPE_INT64)
    entry = request.nested_type.add(name="LabelsEntry")
    entry.options.map_entry = True
    _field(entry, "key", 1, F.TYPE_STRING)
    _field(entry, "value", 2, F.TYPE_STRING)
    _field(request, "labels", 8, F.TYPE_MESSAGE, repeated=True, type_name=f"{p}.ThingRequest.LabelsEntry")
    _field(request, "wait", 9, F.TYPE_MESSAGE, type_name=".google.protobuf.Duration")
    _field(request, "request_id", 10, F.TYPE_STRING, json="requestId")
    _field(request, "path", 11, F.TYPE_STRING)
    _field(request, "fields", 12, F.TYPE_STRING, json="$fields")
    response = fdp.message_type.add(name="ThingResponse")
    response.options.Extensions[options_pb2.response_type] = "ThingResponse"
    _field(response, "id", 1, F.TYPE_STRING)
    _field(response, "inner", 2, F.TYPE_MESSAGE, type_name=f"{p}.Inner")
    _field(response, "count", 3, F.TYPE_INT64)
    service = fdp.service.add(name="ThingService")
    for method_name, rule, streaming in methods:
        method = service.method.add(name=method_name, input_type=f"{p}.ThingRequest",
                                    output_type=f"{p}.ThingResponse", server_streaming=streaming)
        if rule is not None:
            method.options.Extensions[annotations_pb2.http].CopyFrom(rule)
    descriptor_pool.Default().AddSerializedFile(fdp.SerializeToString())
    return descriptor_pool.Default().FindServiceByName(f"resttest.{package}.ThingService")


THINGS = _build_file("things.proto", [
    ("GetThing", R(get="/v1/{parent=shelves/*}/things/{id}", additional_bindings=[R(get="/v1/things/{id}")]), False),
    ("ListThings", R(get="/v1/things"), False),
    ("CreateInner", R(post="/v1/things/{id}/inner", body="inner", response_body="inner"), False),
    ("UpdateThing", R(patch="/v1/things/{id}", body="*"), False),
    ("GetFile", R(get="/v1/files/{path=**}"), False),
    ("ArchiveThing", R(post="/v1/things/{id}:archive", body="*"), False),
    ("GetByInner", R(get="/v1/inner/{inner.name}"), False),
    ("Search", R(custom=http_pb2.CustomHttpPattern(kind="SEARCH", path="/v1/things:search")), False),
    ("WatchThing", R(get="/v1/things/{id}:watch"), True),
    ("NoRest", None, False),
])

BROKEN = _build_file("broken.proto", [
    ("UnknownVar", R(get="/v1/x/{nope}"), False),
    ("RepeatedVar", R(get="/v1/x/{sizes}"), False),
    ("MessageVar", R(get="/v1/x/{inner}"), False),
    ("UnknownBody", R(post="/v1/x", body="nope"), False),
    ("RepeatedBody", R(post="/v1/x", body="sizes"), False),
    ("BodyAlsoInPath", R(post="/v1/x/{inner.name}", body="inner"), False),
    ("UnknownResponseBody", R(get="/v1/x", response_body="nope"), False),
    ("BadTemplate", R(get="v1/x"), False),
    ("DuplicateA", R(get="/v1/dup/{id}"), False),
    ("DuplicateB", R(get="/v1/dup/{parent}"), False),
])


def _spec(method: MethodDescriptor) -> MethodSpec:
    async def handler(request: Message, call: object) -> Message:
        raise AssertionError("not called in unit tests")

    return MethodSpec(full_name=f"/{method.containing_service.full_name}/{method.name}", descriptor=method,
                      request_type=GetMessageClass(method.input_type),
                      response_type=GetMessageClass(method.output_type),
                      server_streaming=method.server_streaming, handler=handler)


SPECS = [_spec(m) for m in THINGS.methods]
TABLE = RouteTable.from_methods(SPECS, context_path="/ctx")


def _binding(method: str, index: int = 0) -> Any:
    return next(b for b in TABLE.bindings if b.spec.descriptor.name == method and b.index == index)


# ---------------------------------------------------------------- templates


@pytest.mark.parametrize(("template", "segments", "variables", "verb"), [
    pytest.param("/v1/things", [("literal", "v1"), ("literal", "things")], [], None, id="ok-literals"),
    pytest.param("/v1/things/{id}", [("literal", "v1"), ("literal", "things"), ("one", "")],
                 [("id", 2, 3, False)], None, id="ok-variable"),
    pytest.param("/v1/{parent=shelves/*}/x", [("literal", "v1"), ("literal", "shelves"), ("one", ""),
                                              ("literal", "x")],
                 [("parent", 1, 3, True)], None, id="ok-multi-segment-variable"),
    pytest.param("/v1/{path=**}", [("literal", "v1"), ("rest", "")], [("path", 1, None, True)], None,
                 id="ok-double-wildcard"),
    pytest.param("/v1/*/x:do", [("literal", "v1"), ("one", ""), ("literal", "x")], [], "do", id="ok-verb"),
    pytest.param("/v1/{a.b}:watch", [("literal", "v1"), ("one", "")], [("a.b", 1, 2, False)], "watch",
                 id="ok-nested-field-and-verb"),
])
def test_parse_template(template: str, segments: list[tuple[str, str]],
                        variables: list[tuple[str, int, int | None, bool]], verb: str | None) -> None:
    parsed = parse_template(template)
    assert list(parsed.segments) == segments
    assert [(v.name, v.start, v.end, v.multi) for v in parsed.variables] == variables
    assert parsed.verb == verb


@pytest.mark.parametrize("template", [
    pytest.param("v1/x", id="fail-no-leading-slash"),
    pytest.param("/v1/**/x", id="fail-double-wildcard-not-last"),
    pytest.param("/v1/{a={b}}", id="fail-nested-variables"),
    pytest.param("/v1/{a", id="fail-unclosed"),
    pytest.param("/v1/{a}/{a}", id="fail-field-bound-twice"),
    pytest.param("/v1/x:", id="fail-empty-verb"),
    pytest.param("/v1//x", id="fail-empty-segment"),
    pytest.param("/v1/{a-b}", id="fail-bad-field-name"),
])
def test_parse_template_refuses(template: str) -> None:
    with pytest.raises(RouteError):
        parse_template(template)


@pytest.mark.parametrize("method", [m.name for m in BROKEN.methods if not m.name.startswith("Duplicate")])
def test_broken_annotation_fails_at_start_up(method: str) -> None:
    with pytest.raises(RouteError, match=method if method == "BadTemplate" else "."):
        bindings_of(_spec(BROKEN.methods_by_name[method]))


def test_duplicate_route_fails_at_start_up() -> None:
    specs = [_spec(BROKEN.methods_by_name[n]) for n in ("DuplicateA", "DuplicateB")]
    with pytest.raises(RouteError, match="bound by both"):
        RouteTable.from_methods(specs)


def test_method_without_annotation_has_no_route() -> None:
    assert bindings_of(_spec(THINGS.methods_by_name["NoRest"])) == []
    assert all(b.spec.descriptor.name != "NoRest" for b in TABLE.bindings)


# ---------------------------------------------------------------- matching


@pytest.mark.parametrize(("http_method", "path", "method", "index", "values"), [
    pytest.param("GET", "/ctx/v1/shelves/s1/things/t1", "GetThing", 0, {"parent": "shelves/s1", "id": "t1"},
                 id="ok-multi-segment-variable"),
    pytest.param("GET", "/ctx/v1/things/t1", "GetThing", 1, {"id": "t1"}, id="ok-additional-binding"),
    pytest.param("GET", "/ctx/v1/things", "ListThings", 0, {}, id="ok-literal-route"),
    pytest.param("POST", "/ctx/v1/things/t1/inner", "CreateInner", 0, {"id": "t1"}, id="ok-post"),
    pytest.param("PATCH", "/ctx/v1/things/t1", "UpdateThing", 0, {"id": "t1"}, id="ok-patch"),
    pytest.param("GET", "/ctx/v1/files/a/b%2Fc/d%20e", "GetFile", 0, {"path": "a/b%2Fc/d e"},
                 id="ok-double-wildcard-keeps-encoded-slash"),
    pytest.param("GET", "/ctx/v1/files", "GetFile", 0, {"path": ""}, id="ok-double-wildcard-empty"),
    pytest.param("POST", "/ctx/v1/things/t1:archive", "ArchiveThing", 0, {"id": "t1"}, id="ok-verb"),
    pytest.param("GET", "/ctx/v1/things/t1:watch", "WatchThing", 0, {"id": "t1"}, id="ok-verb-stream"),
    pytest.param("GET", "/ctx/v1/things/AB:CD", "GetThing", 1, {"id": "AB:CD"}, id="ok-colon-is-no-verb"),
    pytest.param("GET", "/ctx/v1/things/t1%3Awatch", "GetThing", 1, {"id": "t1:watch"},
                 id="ok-encoded-colon-is-no-verb"),
    pytest.param("GET", "/ctx/v1/things/t1:archive", "GetThing", 1, {"id": "t1:archive"},
                 id="ok-verb-of-another-method-falls-back-to-the-plain-route"),
    pytest.param("GET", "/ctx/v1/things/a%2Fb", "GetThing", 1, {"id": "a/b"}, id="ok-encoded-slash-in-segment"),
    pytest.param("GET", "/ctx/v1/things/a+b%2Bc", "GetThing", 1, {"id": "a+b+c"}, id="ok-plus-is-literal"),
    pytest.param("GET", "/ctx/v1/things/%C3%A9", "GetThing", 1, {"id": "\u00e9"}, id="ok-utf8"),
    pytest.param("GET", "/ctx/v1/inner/n1", "GetByInner", 0, {"inner.name": "n1"}, id="ok-nested-field"),
    pytest.param("SEARCH", "/ctx/v1/things:search", "Search", 0, {}, id="ok-custom-method"),
])
def test_resolve(http_method: str, path: str, method: str, index: int, values: dict[str, str]) -> None:
    match = TABLE.resolve(http_method, path)
    assert (match.binding.spec.descriptor.name, match.binding.index) == (method, index)
    assert match.path_values == values


@pytest.mark.parametrize(("http_method", "path", "status", "allow"), [
    pytest.param("GET", "/ctx/v1/nothing", 404, None, id="fail-unknown-path"),
    pytest.param("GET", "/other/v1/things", 404, None, id="fail-outside-context-path"),
    pytest.param("GET", "/ctx", 404, None, id="fail-context-path-alone"),
    pytest.param("GET", "/ctx/v1/things/", 404, None, id="fail-empty-variable"),
    pytest.param("GET", "/ctx/v1/things/a/b", 404, None, id="fail-extra-segment"),
    pytest.param("DELETE", "/ctx/v1/things/t1", 405, "GET, PATCH", id="fail-wrong-method"),
    # The plain GET and PATCH routes also match "t1:watch" as an id (the verb fallback).
    pytest.param("POST", "/ctx/v1/things/t1:watch", 405, "GET, PATCH", id="fail-wrong-method-on-verb"),
    pytest.param("GET", "/ctx/v1/things/%FF", 400, None, id="fail-not-utf8"),
])
def test_resolve_refuses(http_method: str, path: str, status: int, allow: str | None) -> None:
    with pytest.raises(Refusal) as caught:
        TABLE.resolve(http_method, path)
    assert caught.value.http_status == status
    assert caught.value.headers.get("Allow") == allow


def test_empty_context_path() -> None:
    table = RouteTable.from_methods(SPECS, context_path="")
    assert table.resolve("GET", "/v1/things").binding.spec.descriptor.name == "ListThings"


# ---------------------------------------------------------------- transcoding


@pytest.mark.parametrize(("query", "expected"), [
    pytest.param([("id", "x")], {"id": "x"}, id="ok-string"),
    pytest.param([("inner.size", "3"), ("inner.name", "n")], {"inner": {"name": "n", "size": 3}},
                 id="ok-nested-int"),
    pytest.param([("color", "BLUE")], {"color": "BLUE"}, id="ok-enum-by-name"),
    pytest.param([("color", "1")], {"color": "RED"}, id="ok-enum-by-number"),
    pytest.param([("sizes", "1"), ("sizes", "2")], {"sizes": [1, 2]}, id="ok-repeated"),
    pytest.param([("flag", "true")], {"flag": True}, id="ok-bool"),
    pytest.param([("big", "9007199254740993")], {"big": "9007199254740993"}, id="ok-int64"),
    pytest.param([("wait", "1.5s")], {"wait": "1.500s"}, id="ok-duration"),
    pytest.param([("$fields", "-a.b")], {"$fields": "-a.b"}, id="ok-json-name"),
    pytest.param([("fields", "a")], {"$fields": "a"}, id="ok-proto-name"),
    pytest.param([("request_id", "r1")], {"requestId": "r1"}, id="ok-proto-name-snake"),
])
def test_query_parameters(query: list[tuple[str, str]], expected: dict[str, Any]) -> None:
    from google.protobuf import json_format

    message = build_request(_binding("ListThings"), path_values={}, query=query)
    assert json_format.MessageToDict(message) == expected


@pytest.mark.parametrize(("method", "query", "field"), [
    pytest.param("ListThings", [("nope", "1")], "nope", id="fail-unknown"),
    pytest.param("ListThings", [("inner.nope", "1")], "inner.nope", id="fail-unknown-nested"),
    pytest.param("ListThings", [("flag", "yes")], "flag", id="fail-bool"),
    pytest.param("ListThings", [("inner.size", "x")], "inner.size", id="fail-int"),
    pytest.param("ListThings", [("sizes", "1"), ("sizes", "a")], "sizes", id="fail-repeated-int"),
    pytest.param("ListThings", [("color", "GREEN")], "color", id="fail-enum"),
    pytest.param("ListThings", [("id", "a"), ("id", "b")], "id", id="fail-given-twice"),
    pytest.param("ListThings", [("labels", "x")], "labels", id="fail-map"),
    pytest.param("ListThings", [("inner", "x")], "inner", id="fail-message"),
    pytest.param("ListThings", [("wait", "soon")], "wait", id="fail-duration"),
    pytest.param("GetThing", [("id", "x")], "id", id="fail-path-bound"),
    pytest.param("UpdateThing", [("color", "RED")], "color", id="fail-body-star-takes-no-query"),
    pytest.param("CreateInner", [("inner.name", "x")], "inner.name", id="fail-body-field"),
])
def test_query_parameters_refused(method: str, query: list[tuple[str, str]], field: str) -> None:
    binding = _binding(method)
    values = {v.name: "v" for v in binding.template.variables}
    with pytest.raises(Refusal) as caught:
        build_request(binding, path_values=values, query=query)
    assert caught.value.http_status == 400
    assert caught.value.field == field
    assert field in caught.value.message


def test_body_star_with_path() -> None:
    message = build_request(_binding("UpdateThing"), path_values={"id": "t1"},
                            body=b'{"inner": {"name": "n"}, "color": "BLUE", "id": "t1", "labels": {"a": "b"}}')
    assert (message.id, message.inner.name, message.labels["a"]) == ("t1", "n", "b")  # type: ignore[attr-defined]


def test_body_field_and_nested_path_field() -> None:
    message = build_request(_binding("CreateInner"), path_values={"id": "t1"}, body=b'{"name": "n", "size": 2}')
    assert (message.id, message.inner.name, message.inner.size) == ("t1", "n", 2)  # type: ignore[attr-defined]
    message = build_request(_binding("GetByInner"), path_values={"inner.name": "n1"}, query=[("inner.size", "4")])
    assert (message.inner.name, message.inner.size) == ("n1", 4)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("body", "field"), [
    pytest.param(b'{"nope": 1}', "nope", id="fail-unknown-field"),
    pytest.param(b'{"inner": {"bar": 1}}', "inner.bar", id="fail-unknown-nested-field"),
    pytest.param(b'{"flag": "yes"}', "flag", id="fail-wrong-type"),
    pytest.param(b'{"inner": {"size": "big"}}', "inner.size", id="fail-wrong-nested-type"),
    pytest.param(b'{"sizes": {}}', "sizes", id="fail-object-for-list"),
    pytest.param(b'{"id": "other"}', "id", id="fail-body-contradicts-path"),
    pytest.param(b'{"inner": ', "", id="fail-malformed"),
    pytest.param(b"[1]", "", id="fail-not-an-object"),
    pytest.param(b'{"big": NaN}', "", id="fail-nan-literal"),
    pytest.param(b"\xff{}", "", id="fail-not-utf8"),
    pytest.param(b"[" * 100_000, "", id="fail-nested-too-deep"),
])
def test_body_refused(body: bytes, field: str) -> None:
    with pytest.raises(Refusal) as caught:
        build_request(_binding("UpdateThing"), path_values={"id": "t1"}, body=body)
    assert caught.value.http_status == 400
    assert caught.value.field == field


def test_empty_body_is_the_empty_message() -> None:
    message = build_request(_binding("UpdateThing"), path_values={"id": "t1"}, body=b"  ")
    assert message == _binding("UpdateThing").spec.request_type(id="t1")


@pytest.mark.parametrize(("body", "headers", "expected"), [
    pytest.param(b"{}", {"Idempotency-Key": "k1"}, "k1", id="ok-header-fills-request-id"),
    pytest.param(b'{"requestId": "b1"}', {"Idempotency-Key": "k1"}, "b1", id="ok-body-wins"),
    pytest.param(b"{}", {"idempotency-key": "k2"}, "k2", id="ok-lower-case-header"),
    pytest.param(b"{}", {}, "", id="ok-none"),
])
def test_idempotency_key(body: bytes, headers: dict[str, str], expected: str) -> None:
    message = build_request(_binding("UpdateThing"), path_values={"id": "t1"}, body=body, headers=headers)
    assert message.request_id == expected  # type: ignore[attr-defined]


# ---------------------------------------------------------------- OpenAPI of any annotation


def test_openapi_of_synthetic_service_validates() -> None:
    document = build_openapi(TABLE.bindings, context_path="/ctx")
    validate(document)
    paths = document["paths"]
    assert "/ctx/v1/{parent}/things/{id}" in paths
    assert "/ctx/v1/files/{path}" in paths
    assert "/ctx/v1/inner/{inner.name}" in paths
    assert "/ctx/v1/things/{id}:archive" in paths
    assert "patch" in paths["/ctx/v1/things/{id}"] and "get" in paths["/ctx/v1/things/{id}"]
    list_parameters = {p["name"] for p in paths["/ctx/v1/things"]["get"]["parameters"]}
    assert {"id", "inner.name", "inner.size", "sizes", "$fields", "requestId", "wait", "big"} <= list_parameters
    assert "labels" not in list_parameters
    assert "/ctx/v1/things:search" not in paths  # custom HTTP methods cannot be described
    inner_body = paths["/ctx/v1/things/{id}/inner"]["post"]["requestBody"]["content"]["application/json"]
    assert inner_body["schema"] == {"$ref": "#/components/schemas/resttest.things.Inner"}
