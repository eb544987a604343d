"""HTTP routes of the catalogue: products with their variants, variants by SKU, listing with
filters and keyset paging, and the shop's search box.

Every route needs an admin token and sees only its workspace. Bodies are read and checked by
`polku.commerce.catalog.validation` (the importer's code path too), so every bad value is a
4xx naming the field, with a code and a hint; the pydantic models here only describe the
shapes in the OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from polku.commerce.catalog import actions
from polku.commerce.catalog.analysis import LANGUAGES, warm
from polku.commerce.catalog.queries import (
    Product,
    ProductFilter,
    Variant,
    get_product,
    get_variant,
    list_products,
)
from polku.commerce.catalog.search import SearchResult, search
from polku.commerce.catalog.validation import (
    check_product,
    check_variant,
    product_changes,
    variant_changes,
)
from polku.errors import InvalidField, InvalidJSON, PayloadTooLarge
from polku.events import to_iso
from polku.http import AdminWorkspace, json_response, runtime
from polku.profiles.queries import parse_time
from polku.storage.engine import translate_errors

__all__ = ["router"]

router = APIRouter(tags=["catalog"])

_MAX_BODY = 4 * 1024 * 1024
_T = TypeVar("_T")

# -- shapes (for the OpenAPI document) ------------------------------------------------------


class VariantIn(BaseModel):
    sku: str = Field(description="Unique in the workspace; belongs to one product for good.")
    product_id: str | None = Field(
        None, description="Required when adding a SKU through /v1/catalog/variants/{sku}."
    )
    price: float | str = Field(
        description='Exact price in the main unit: 149.9 or "149.90" (a decimal comma is '
        "read too); 0 or more, with at most the currency's decimals."
    )
    currency: str = Field(description="ISO 4217 code, e.g. EUR.")
    colour: str | None = Field(None, description='"color" is read as well.')
    size: str | None = None
    image_url: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    active: bool = True


class TranslationIn(BaseModel):
    name: str | None = None
    description: str | None = None


class ProductIn(BaseModel):
    product_id: str = Field(description="The retailer's own id (optional in the body of PUT).")
    name: str
    description: str = ""
    brand: str | None = None
    category: list[str] | str = Field(
        default_factory=list,
        description='Root first: ["Naiset", "Takit"], or "Naiset > Takit".',
    )
    image_url: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    translations: dict[Literal["fi", "en"], TranslationIn] = Field(
        default_factory=dict, description="What the shop shows in each language."
    )
    active: bool = True
    variants: list[VariantIn] = Field(
        default_factory=list, description="Upserted; variants not listed stay as they are."
    )


class VariantOut(BaseModel):
    sku: str
    product_id: str
    colour: str | None
    size: str | None
    price: str = Field(description='Exact, with the currency\'s decimals: "149.90".')
    currency: str
    image_url: str | None
    attributes: dict[str, Any]
    active: bool = Field(description="The variant's own flag, as set.")
    on_sale: bool = Field(description="The variant and its product are both active.")
    created_at: str
    updated_at: str


class ProductOut(BaseModel):
    product_id: str
    name: str
    description: str
    brand: str | None
    category: list[str]
    image_url: str | None
    attributes: dict[str, Any]
    translations: dict[str, dict[str, str]]
    active: bool
    created_at: str
    updated_at: str
    variants: list[VariantOut]


class ProductPageOut(BaseModel):
    products: list[ProductOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class SearchItemOut(BaseModel):
    product_id: str
    name: str = Field(description="In the language asked for, when the product has it.")
    brand: str | None
    category: list[str]
    image_url: str | None
    price_from: str | None = Field(description="Lowest price of its variants on sale.")
    currency: str | None


class HitOut(SearchItemOut):
    score: float
    matched: int = Field(description="How many of the query's words it matches.")


class RelatedOut(SearchItemOut):
    reason: Literal["bought_together", "same_category"]
    because: str = Field(description="The hit it is related to.")


class SearchOut(BaseModel):
    query: str
    lang: str | None
    total: int = Field(description="Products that match; `hits` are the best `k`.")
    hits: list[HitOut]
    related: list[RelatedOut]


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with its ``$defs`` references replaced by the definitions themselves."""
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def _body_doc(model: type[BaseModel], example: dict[str, Any]) -> dict[str, Any]:
    schema = _inline(model.model_json_schema())
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema, "example": example}},
        }
    }


_PRODUCT_EXAMPLE: dict[str, Any] = {
    "product_id": "JKT-1001",
    "name": "Talvitakki Lumi",
    "description": "Lämmin untuvatakki pakkasille.",
    "brand": "Pohjola",
    "category": ["Naiset", "Takit", "Talvitakit"],
    "image_url": "https://cdn.example.fi/jkt-1001.jpg",
    "attributes": {"material": "untuva"},
    "translations": {"en": {"name": "Lumi winter jacket"}},
    "variants": [
        {
            "sku": "JKT-1001-BLK-M",
            "colour": "musta",
            "size": "M",
            "price": "249.90",
            "currency": "EUR",
        },
    ],
}
_VARIANT_EXAMPLE: dict[str, Any] = {
    "product_id": "JKT-1001",
    "colour": "musta",
    "size": "L",
    "price": "249.90",
    "currency": "EUR",
}

# -- translating --------------------------------------------------------------------------


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > _MAX_BODY:
        raise PayloadTooLarge(
            f"The body is {len(raw)} bytes; at most {_MAX_BODY} are allowed.",
            hint="Send fewer products per request, or use `polku import catalog FILE`.",
        )
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidJSON(
            f"The body is not JSON: {exc}.",
            hint="Send a JSON object (Content-Type: application/json).",
        ) from None


def _variant(v: Variant) -> dict[str, Any]:
    return {
        "sku": v.sku,
        "product_id": v.product_id,
        "colour": v.colour,
        "size": v.size,
        "price": str(v.price),
        "currency": v.currency,
        "image_url": v.image_url,
        "attributes": v.attributes,
        "active": v.own_active,
        "on_sale": v.active,
        "created_at": to_iso(v.created_at),
        "updated_at": to_iso(v.updated_at),
    }


def _product(p: Product) -> dict[str, Any]:
    return {
        "product_id": p.product_id,
        "name": p.name,
        "description": p.description,
        "brand": p.brand,
        "category": list(p.category),
        "image_url": p.image_url,
        "attributes": p.attributes,
        "translations": p.translations,
        "active": p.active,
        "created_at": to_iso(p.created_at),
        "updated_at": to_iso(p.updated_at),
        "variants": [_variant(v) for v in p.variants],
    }


def _item(p: Product, lang: str | None) -> dict[str, Any]:
    on_sale = [v for v in p.variants if v.active]
    cheapest = min(on_sale, key=lambda v: v.price, default=None)
    return {
        "product_id": p.product_id,
        "name": p.name_in(lang),
        "brand": p.brand,
        "category": list(p.category),
        "image_url": p.image_url,
        "price_from": None if cheapest is None else str(cheapest.price),
        "currency": None if cheapest is None else cheapest.currency,
    }


def _search_view(q: str, lang: str | None, found: SearchResult) -> dict[str, Any]:
    return {
        "query": q,
        "lang": lang,
        "total": found.total,
        "hits": [
            {**_item(h.product, lang), "score": h.score, "matched": h.matched} for h in found.hits
        ],
        "related": [
            {**_item(r.product, lang), "reason": r.reason, "because": r.because}
            for r in found.related
        ],
    }


async def _call(func: Callable[..., _T], *args: Any) -> _T:
    with translate_errors("writing the catalogue"):
        return await run_in_threadpool(func, *args)


def _read_product(request: Request, workspace: str, product_id: str) -> Product:
    rt = runtime(request)
    with translate_errors("reading the catalogue"), rt.engine.connect() as conn:
        found = get_product(conn, workspace, product_id)
    if found is None:
        raise actions.unknown_product(product_id)
    return found


# -- routes -------------------------------------------------------------------------------

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A bad value: the code, the field and what to do."},
    404: {"description": "Unknown product or SKU (`unknown_product`, `unknown_sku`)."},
    409: {"description": "`product_exists`, or `sku_taken` (the SKU is another product's)."},
}


@router.get("/v1/catalog/search", response_model=SearchOut, responses={400: _ERRORS[400]})
def search_catalog(
    request: Request,
    workspace: AdminWorkspace,
    q: Annotated[str, Query(max_length=200, description="What the shopper typed.")] = "",
    lang: Annotated[
        str | None,
        Query(
            description="fi or en: the language of the query and of the names shown. "
            "Leave out to search in every language."
        ),
    ] = None,
    k: Annotated[int, Query(ge=1, le=100, description="How many hits.")] = 10,
    related: Annotated[int, Query(ge=0, le=50, description="How many related items.")] = 6,
) -> Response:
    """Search active products by name, description, brand, category, colour and SKU, in
    Finnish and English: inflected forms and compounds match ("takki" finds "takit",
    "takkeja" and "Talvitakki"), the last word matches as a prefix while typing, and name
    hits rank above description hits. `related` holds products bought together with the top
    hits, then others of their categories."""
    if lang is not None and lang not in LANGUAGES:
        raise InvalidField(
            f"lang {lang[:20]!r} is not a language catalogue search supports.",
            field="lang",
            code="unsupported_language",
            hint=f"Use one of: {', '.join(LANGUAGES)}, or leave lang out.",
        )
    rt = runtime(request)
    warm()
    with translate_errors("searching the catalogue"), rt.engine.connect() as conn:
        found = search(conn, workspace, q, lang=lang, k=k, related=related)
    return json_response(_search_view(q, lang, found))


@router.get("/v1/catalog/products", response_model=ProductPageOut, responses={400: _ERRORS[400]})
def list_catalog(
    request: Request,
    workspace: AdminWorkspace,
    active: Annotated[bool | None, Query(description="Only active (true) or inactive.")] = None,
    category: Annotated[
        str | None,
        Query(description='This category and those below it: "Naiset > Takit".'),
    ] = None,
    brand: Annotated[str | None, Query(max_length=200)] = None,
    updated_since: Annotated[
        str | None, Query(description="Changed at or after (ISO-8601 or epoch ms).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
) -> Response:
    """Products with their variants, by product id, a page at a time (keyset paging: pages
    stay consistent while the catalogue changes)."""
    path = tuple(p.strip() for p in category.split(">")) if category else ()
    if any(not p for p in path):
        raise InvalidField(
            "category has an empty level.",
            field="category",
            hint='Send the path as "Naiset > Takit".',
        )
    only = ProductFilter(
        active=active,
        category=path,
        brand=brand,
        updated_since=None if updated_since is None else parse_time(updated_since, "updated_since"),
    )
    rt = runtime(request)
    with translate_errors("listing products"), rt.engine.connect() as conn:
        page = list_products(conn, workspace, only, limit=limit, cursor=cursor)
    return json_response(
        {"products": [_product(p) for p in page.products], "next_cursor": page.next_cursor}
    )


@router.post(
    "/v1/catalog/products",
    response_model=ProductOut,
    status_code=201,
    responses=_ERRORS,
    openapi_extra=_body_doc(ProductIn, _PRODUCT_EXAMPLE),
)
async def create_product(request: Request, workspace: AdminWorkspace) -> Response:
    """Create a product with its variants; 409 `product_exists` if the id is taken."""
    product = check_product(await _json_body(request))
    created = await _call(actions.create_product, runtime(request), workspace, product)
    return json_response(_product(created), 201)


@router.get("/v1/catalog/products/{product_id:path}", response_model=ProductOut, responses=_ERRORS)
def read_product(product_id: str, request: Request, workspace: AdminWorkspace) -> Response:
    """One product with all its variants (active or not)."""
    return json_response(_product(_read_product(request, workspace, product_id)))


@router.put(
    "/v1/catalog/products/{product_id:path}",
    response_model=ProductOut,
    responses={**_ERRORS, 201: {"description": "Created."}},
    openapi_extra=_body_doc(ProductIn, _PRODUCT_EXAMPLE),
)
async def put_product(product_id: str, request: Request, workspace: AdminWorkspace) -> Response:
    """Create or replace a product (201 when created). Its fields are replaced; the variants
    listed are created or replaced, those not listed stay as they are."""
    product = check_product(await _json_body(request), product_id)
    saved, created = await _call(actions.put_product, runtime(request), workspace, product)
    return json_response(_product(saved), 201 if created else 200)


@router.patch(
    "/v1/catalog/products/{product_id:path}",
    response_model=ProductOut,
    responses=_ERRORS,
    openapi_extra=_body_doc(ProductIn, {"name": "Talvitakki Lumi II", "active": False}),
)
async def patch_product(product_id: str, request: Request, workspace: AdminWorkspace) -> Response:
    """Change some of a product's fields (`null` clears an optional one); variants change
    through /v1/catalog/variants/{sku}."""
    changes = product_changes(await _json_body(request))
    saved = await _call(actions.update_product, runtime(request), workspace, product_id, changes)
    return json_response(_product(saved))


@router.delete(
    "/v1/catalog/products/{product_id:path}", response_model=ProductOut, responses=_ERRORS
)
async def delete_product(product_id: str, request: Request, workspace: AdminWorkspace) -> Response:
    """Take a product off sale: it is deactivated, not deleted, because orders, receipts,
    stock and the event log keep referring to it. It leaves search at once; `PATCH` with
    `{"active": true}` brings it back."""
    saved = await _call(actions.deactivate_product, runtime(request), workspace, product_id)
    return json_response(_product(saved))


@router.get("/v1/catalog/variants/{sku:path}", response_model=VariantOut, responses=_ERRORS)
def read_variant(sku: str, request: Request, workspace: AdminWorkspace) -> Response:
    """One variant by SKU."""
    rt = runtime(request)
    with translate_errors("reading the catalogue"), rt.engine.connect() as conn:
        found = get_variant(conn, workspace, sku)
    if found is None:
        raise actions.unknown_sku(sku)
    return json_response(_variant(found))


@router.put(
    "/v1/catalog/variants/{sku:path}",
    response_model=VariantOut,
    responses={**_ERRORS, 201: {"description": "Created."}},
    openapi_extra=_body_doc(VariantIn, _VARIANT_EXAMPLE),
)
async def put_variant(sku: str, request: Request, workspace: AdminWorkspace) -> Response:
    """Create or replace one variant (201 when created); a new SKU needs `product_id`."""
    body = await _json_body(request)
    if isinstance(body, dict):
        if body.get("sku") not in (None, sku):
            raise InvalidField(
                "The body's sku differs from the path's.",
                field="sku",
                hint="Leave sku out of the body, or send the same SKU.",
            )
        body = {**body, "sku": sku}
    variant = check_variant(body)
    product_id = body.get("product_id") if isinstance(body, dict) else None
    saved, created = await _call(
        actions.put_variant, runtime(request), workspace, product_id, variant
    )
    return json_response(_variant(saved), 201 if created else 200)


@router.patch(
    "/v1/catalog/variants/{sku:path}",
    response_model=VariantOut,
    responses=_ERRORS,
    openapi_extra=_body_doc(VariantIn, {"price": "199.90"}),
)
async def patch_variant(sku: str, request: Request, workspace: AdminWorkspace) -> Response:
    """Change some of a variant's fields, e.g. its price or `active`."""
    changes = variant_changes(await _json_body(request))
    saved = await _call(actions.update_variant, runtime(request), workspace, sku, changes)
    return json_response(_variant(saved))


@router.delete("/v1/catalog/variants/{sku:path}", response_model=VariantOut, responses=_ERRORS)
async def delete_variant(sku: str, request: Request, workspace: AdminWorkspace) -> Response:
    """Take one SKU off sale (deactivated, not deleted; see DELETE of a product)."""
    saved = await _call(actions.deactivate_variant, runtime(request), workspace, sku)
    return json_response(_variant(saved))
