"""Typed endpoints: pydantic models in, pydantic models out, and one OpenAPI 3.1 document.

Each audience module declares its endpoints on an :class:`Api`::

    api = Api("admin")

    @api.post("/api/v1/products", body=ProductIn, response=ProductOut, status=201)
    async def add_product(request: web.Request, body: ProductIn) -> ProductOut: ...

The wrapper parses the path, query and body into their models (a bad value is a clear 4xx,
never a 500), checks the caller's role, and renders the returned model. The same
declarations produce ``/api/openapi.json``, so the document cannot drift from the code.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from hub.domain.access import ROLES
from hub.errors import InvalidRequestError, MalformedRequestError, NotFoundError
from hub.web.keys import PRINCIPAL

M = TypeVar("M", bound=BaseModel)
Handler = Callable[..., Awaitable[Any]]

# The roles of the hub (hub.domain.access). Admin may call everything; the others only
# what names them.


class Body(BaseModel):
    """Base of every request body and query model: unknown fields are refused and every
    text has a length limit, so a 4 MB product name never reaches the database."""

    model_config = ConfigDict(extra="forbid", str_max_length=2000, frozen=True, strict=True)


class Params(BaseModel):
    """Base of path and query models: their values arrive as text, so they are converted
    (lax), with the same limits as bodies."""

    model_config = ConfigDict(extra="forbid", str_max_length=2000, frozen=True)


class Out(BaseModel):
    """Base of every response model."""

    model_config = ConfigDict(frozen=True)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def json_response(value: Any, status: int = 200, **kwargs: Any) -> web.Response:
    return web.json_response(value, status=status, dumps=dumps, **kwargs)


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    roles: tuple[str, ...]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    params: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    produces: str = "application/json"
    errors: tuple[int, ...] = ()

    @property
    def public(self) -> bool:
        return not self.roles


ENDPOINTS = web.AppKey("endpoints", list[Endpoint])
TAGS = web.AppKey("tags", dict[str, str])  # OpenAPI tag (audience) -> description


@dataclass
class Api:
    """The endpoints of one audience (a tag in the OpenAPI document)."""

    tag: str
    description: str = ""
    endpoints: list[Endpoint] = field(default_factory=list)

    def route(
        self,
        method: str,
        path: str,
        *,
        roles: Collection[str] = ("admin",),
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        params: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = 200,
        produces: str = "application/json",
        errors: Iterable[int] = (),
        summary: str | None = None,
    ) -> Callable[[Handler], Handler]:
        unknown = set(roles) - set(ROLES)
        if unknown:
            raise ValueError(f"{method} {path}: unknown roles {sorted(unknown)}")

        def register(handler: Handler) -> Handler:
            doc = inspect.getdoc(handler) or ""
            endpoint = Endpoint(
                method=method,
                path=path,
                handler=handler,
                summary=summary or doc.split("\n", 1)[0] or handler.__name__,
                tag=self.tag,
                roles=tuple(roles),
                body=body,
                query=query,
                params=params,
                response=response,
                status=status,
                produces=produces,
                errors=tuple(errors),
            )
            self.endpoints.append(endpoint)
            return handler

        return register

    def get(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **options)

    def post(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **options)

    def put(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, **options)

    def patch(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, **options)

    def delete(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **options)

    def add_to(self, app: web.Application) -> None:
        """Route every endpoint (no implicit HEAD: a HEAD of a consumer URL is no scan)."""
        for endpoint in self.endpoints:
            app.router.add_route(endpoint.method, endpoint.path, _wrap(endpoint))
        app[ENDPOINTS].extend(self.endpoints)
        app[TAGS][self.tag] = self.description


def validation_message(exc: ValidationError, where: str) -> str:
    """One line per problem, naming the field, never echoing the value (it may be huge or
    a secret)."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        location = where + "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]
        )
        problems.append(f"{location}: {error['msg']}")
    return "; ".join(problems[:10]) + ("; ..." if len(problems) > 10 else "")


async def read_json_body(request: web.Request, model: type[M]) -> M:
    """The request body as ``model``: UTF-8 JSON only, any problem a 4xx with a reason."""
    charset = request.charset
    if charset is not None and charset.lower().replace("_", "-") not in ("utf-8", "utf8"):
        raise UnsupportedMediaError(f"Request body charset {charset[:40]!r}: expected utf-8")
    if request.content_type not in ("application/json", "application/octet-stream", ""):
        raise UnsupportedMediaError(
            f"Request body of type {request.content_type[:60]!r}: expected application/json"
        )
    raw = await request.read()
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        message = validation_message(exc, "body")
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise MalformedRequestError(message) from None
        raise InvalidRequestError(message) from None


class UnsupportedMediaError(InvalidRequestError):
    """The request body is not UTF-8 JSON."""


def _wrap(endpoint: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    wants = set(inspect.signature(endpoint.handler).parameters)

    @functools.wraps(endpoint.handler)
    async def handle(request: web.Request) -> web.StreamResponse:
        if endpoint.roles:
            principal = request.get(PRINCIPAL)
            if principal is None:
                raise UnauthenticatedError("Missing or unknown bearer token")
            if principal.role != "admin" and principal.role not in endpoint.roles:
                raise ForbiddenError(
                    f"Role {principal.role!r} may not call {request.method} {request.path[:200]}"
                )
        kwargs: dict[str, Any] = {}
        if endpoint.params is not None:
            try:
                kwargs["params"] = endpoint.params.model_validate(dict(request.match_info))
            except ValidationError as exc:
                # A path that names nothing that can exist (an id of 23 digits) is not found.
                names = ", ".join(
                    f"{e['loc'][0]} {request.match_info.get(str(e['loc'][0]), '')[:40]!r}"
                    for e in exc.errors()
                )
                raise NotFoundError(f"Not found: no record has {names}") from None
        if endpoint.query is not None:
            try:
                kwargs["query"] = endpoint.query.model_validate(_query_dict(request))
            except ValidationError as exc:
                raise InvalidRequestError(validation_message(exc, "query")) from None
        if endpoint.body is not None:
            kwargs["body"] = await read_json_body(request, endpoint.body)
        result = await endpoint.handler(request, **{k: v for k, v in kwargs.items() if k in wants})
        if isinstance(result, web.StreamResponse):
            return result
        if isinstance(result, BaseModel):
            return json_response(result.model_dump(mode="json"), status=endpoint.status)
        return json_response(result, status=endpoint.status)

    return handle


def _query_dict(request: web.Request) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in request.query:
        values = request.query.getall(key)
        out[key] = values if len(values) > 1 else values[0]
    return out


class UnauthenticatedError(InvalidRequestError):
    """No valid credentials."""


class ForbiddenError(InvalidRequestError):
    """Valid credentials, but not for this endpoint or this record."""


# OpenAPI ----------------------------------------------------------------------------------

_PATH_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
_REF = "#/components/schemas/{model}"


def openapi_document(
    endpoints: Iterable[Endpoint], title: str, version: str, descriptions: dict[str, str]
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``endpoints``."""
    schemas: dict[str, Any] = {}

    def ref(model: type[BaseModel], mode: str) -> dict[str, Any]:
        schema = model.model_json_schema(ref_template=_REF, mode=mode)  # type: ignore[arg-type]
        schemas.update(schema.pop("$defs", {}))
        name = model.__name__
        schemas[name] = schema
        return {"$ref": _REF.format(model=name)}

    paths: dict[str, dict[str, Any]] = {}
    for e in sorted(endpoints, key=lambda e: (e.path, e.method)):
        path = _PATH_PARAM.sub(r"{\1}", e.path)
        operation: dict[str, Any] = {
            "tags": [e.tag],
            "summary": e.summary,
            "operationId": f"{e.tag}_{e.handler.__name__}",
        }
        doc = inspect.getdoc(e.handler) or ""
        if "\n" in doc:
            operation["description"] = doc.split("\n", 1)[1].strip()
        parameters: list[dict[str, Any]] = []
        params_schema = (
            e.params.model_json_schema(ref_template=_REF)["properties"] if e.params else {}
        )
        for name in _PATH_PARAM.findall(e.path):
            parameters.append(
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "schema": params_schema.get(name, {"type": "string"}),
                }
            )
        if e.query is not None:
            query_schema = e.query.model_json_schema(ref_template=_REF)
            schemas.update(query_schema.pop("$defs", {}))
            required = set(query_schema.get("required", ()))
            for name, prop in query_schema.get("properties", {}).items():
                parameters.append(
                    {
                        "name": name,
                        "in": "query",
                        "required": name in required,
                        "schema": prop,
                        **({"description": prop["description"]} if "description" in prop else {}),
                    }
                )
        if parameters:
            operation["parameters"] = parameters
        if e.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(e.body, "validation")}},
            }
        ok: dict[str, Any] = {"description": "OK" if e.status < 300 else "Accepted"}
        if e.response is not None:
            ok["content"] = {e.produces: {"schema": ref(e.response, "serialization")}}
        elif e.produces != "application/json":
            ok["content"] = {e.produces: {"schema": {"type": "string"}}}
        responses: dict[str, Any] = {str(e.status): ok}
        error_codes = set(e.errors) | ({400, 413, 415, 422} if e.body is not None else set())
        if e.query is not None:
            error_codes.add(422)
        if e.params is not None:
            error_codes.add(404)
        if e.roles:
            error_codes |= {401, 403}
            operation["security"] = [{"bearer": []}]
        for code in sorted(error_codes):
            responses[str(code)] = {
                "description": _ERROR_TEXT.get(code, "Error"),
                "content": {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}},
            }
        operation["responses"] = responses
        paths.setdefault(path, {})[e.method.lower()] = operation
    schemas["Error"] = {
        "type": "object",
        "properties": {"error": {"type": "string"}},
        "required": ["error"],
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "tags": [{"name": tag, "description": text} for tag, text in descriptions.items()],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


_ERROR_TEXT = {
    400: "Malformed request",
    401: "Missing or unknown credentials",
    403: "Not allowed for this role",
    404: "Not found",
    409: "Conflicts with existing data",
    413: "Request body too large",
    415: "Request body is not UTF-8 JSON",
    422: "Invalid request content",
    429: "Too many requests",
    503: "A service the request needs is unavailable",
}
