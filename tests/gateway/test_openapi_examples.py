"""Every operation in the OpenAPI document shows an example of what it takes and answers, each
valid against its schema, and its errors as problem+json of the types the catalog lists."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from gateway.app import create_app
from gateway.problem_types import PROBLEM_TYPES
from gateway.settings import GatewaySettings
from meshkit.settings import load_settings

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
# Probes answer orchestrators, in their own JSON: a 503 from /readyz is no problem+json.
PROBES = ("/healthz", "/readyz")

Operation = tuple[str, str, dict[str, Any]]


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app(load_settings(GatewaySettings, env_file=None)).openapi()


def operations(document: dict[str, Any]) -> Iterator[Operation]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The schema a `$ref` points at (one level: the document's refs are all to components)."""
    ref = schema.get("$ref")
    if ref is None:
        return schema
    target: dict[str, Any] = document
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return target


def examples_of(document: dict[str, Any], media: dict[str, Any]) -> list[Any]:
    """Every example a media type shows: its own, else its schema's (or, for a list, those of
    its items, as one-item lists): what Swagger UI fills "Try it out" and its samples with."""
    if "example" in media:
        return [media["example"]]
    if "examples" in media:
        return [entry["value"] for entry in media["examples"].values()]
    schema = resolve(document, media.get("schema", {}))
    # An optional body (`X | None`): X's.
    alternatives = [choice for choice in schema.get("anyOf", ()) if choice != {"type": "null"}]
    if len(alternatives) == 1:
        schema = resolve(document, alternatives[0])
    if "examples" in schema:
        return list(schema["examples"])
    if schema.get("type") == "array":
        return [[item] for item in resolve(document, schema.get("items", {})).get("examples", [])]
    return []


def assert_valid(document: dict[str, Any], media: dict[str, Any], value: Any, where: str) -> None:
    # The whole document as the root, so that the schema's refs to components resolve.
    validator = Draft202012Validator({**media["schema"], "components": document["components"]})
    errors = [error.message for error in validator.iter_errors(value)]
    assert not errors, (where, errors)


def test_every_request_body_has_an_example_that_fits_its_schema(
    document: dict[str, Any],
) -> None:
    with_bodies = 0
    for method, path, operation in operations(document):
        body = operation.get("requestBody")
        if body is None:
            continue
        with_bodies += 1
        (media,) = body["content"].values()
        found = examples_of(document, media)
        assert found, f"{method} {path}: no request example"
        for value in found:
            assert_valid(document, media, value, f"{method} {path} request")
    assert with_bodies > 10  # the scan found the bodies


def test_every_answer_with_a_body_has_an_example_that_fits_its_schema(
    document: dict[str, Any],
) -> None:
    for method, path, operation in operations(document):
        successes = {
            status: response
            for status, response in operation["responses"].items()
            if status.startswith("2")
        }
        assert successes, f"{method} {path}: no 2xx answer documented"
        for status, response in successes.items():
            if status == "204":
                assert "content" not in response, f"{method} {path}: a 204 with a body"
                continue
            (media,) = response["content"].values()
            found = examples_of(document, media)
            assert found, f"{method} {path} {status}: no example"
            for value in found:
                assert_valid(document, media, value, f"{method} {path} {status}")


def test_the_register_example_meets_the_password_rules_and_login_uses_it(
    document: dict[str, Any],
) -> None:
    def example(path: str) -> dict[str, Any]:
        (media,) = document["paths"][path]["post"]["requestBody"]["content"].values()
        (value,) = examples_of(document, media)
        assert isinstance(value, dict)
        return value

    register, login = example("/v1/auth/register"), example("/v1/auth/login")
    assert len(register["password"]) >= 8 and register["password"] != register["email"]
    assert login == {"email": register["email"], "password": register["password"]}


def test_every_error_answer_is_problem_json_with_examples_of_its_status_s_types(
    document: dict[str, Any],
) -> None:
    for method, path, operation in operations(document):
        if path in PROBES:
            continue
        for status, response in operation["responses"].items():
            if not status.startswith(("4", "5")):
                continue
            where = f"{method} {path} {status}"
            (media_type,) = response["content"]
            assert media_type == "application/problem+json", where
            media = response["content"][media_type]
            assert media["schema"] == PROBLEM_REF, where
            shown = {entry["value"]["type"] for entry in media["examples"].values()}
            documented = {
                problem.uri for problem in PROBLEM_TYPES.values() if int(status) in problem.statuses
            }
            assert shown == documented, where
            for entry in media["examples"].values():
                assert entry["value"]["status"] == int(status), where
                assert_valid(document, media, entry["value"], where)


def test_the_problem_schema_lists_every_type_of_the_catalog(document: dict[str, Any]) -> None:
    type_field = document["components"]["schemas"]["Problem"]["properties"]["type"]
    uris = [problem.uri for problem in PROBLEM_TYPES.values()]
    assert type_field["examples"] == uris
    for uri in uris:
        assert f"`{uri}`" in type_field["description"], uri
