"""Master data for the back office: products, production lots (with materials and the
inspection report), dealers with authorised regions, warehouses, stores, administrative
divisions, and the CSV/XLSX imports of products and dealers."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from aiohttp import web
from pydantic import Field

from hub import imports, regions, registry
from hub.errors import InvalidRequestError
from hub.models import Dealer, Lot, Product, Store, Warehouse
from hub.web.api import Api, Body, Out, Params
from hub.web.keys import SESSIONS

api = Api("master", "Master data: products, lots, dealers, warehouses, stores, imports.")

Sku = Field(min_length=1, max_length=64, description="The brand's product code (SKU)")
RecordId = Field(ge=1, le=2**63 - 1)
Code = Field(min_length=1, max_length=64)
Name = Field(min_length=1, max_length=200)
RegionCode = Field(
    min_length=2, max_length=12, description="Administrative division code (GB/T 2260)"
)


class Page(Params):
    limit: int = Field(100, ge=1, le=1000, description="Most rows to return")
    offset: int = Field(0, ge=0, le=2**31, description="Rows to skip")


# Products ---------------------------------------------------------------------------------


class ProductIn(Body):
    sku: str = Sku
    name: str = Field(min_length=1, max_length=200, description="Name in Chinese")
    name_en: str | None = Field(None, max_length=200, description="Name in English")
    gtin: str | None = Field(None, max_length=14, description="GTIN-8/12/13/14, stored as GTIN-14")
    spec: str | None = Field(None, max_length=200, description="规格 / specification")
    image_url: str | None = Field(None, max_length=500)
    attributes: dict[str, str] = Field(
        default_factory=dict, max_length=50, description="Free attributes (text values)"
    )


class ProductOut(Out):
    sku: str
    name: str
    name_en: str | None = None
    gtin: str | None
    spec: str | None = None
    image_url: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


def product_out(p: Product) -> ProductOut:
    return ProductOut(
        sku=p.sku,
        name=p.name,
        name_en=p.name_en,
        gtin=p.gtin,
        spec=p.spec,
        image_url=p.image_url,
        attributes=p.attributes or {},
    )


class ProductList(Out):
    total: int
    items: list[ProductOut]


@api.post("/api/v1/products", body=ProductIn, response=ProductOut, status=201, errors=(409,))
async def add_product(request: web.Request, body: ProductIn) -> ProductOut:
    """Add a product."""
    async with request.app[SESSIONS]() as session, session.begin():
        product = await registry.create_product(
            session,
            body.sku,
            body.name,
            body.gtin,
            name_en=body.name_en,
            spec=body.spec,
            image_url=body.image_url,
            attributes=dict(body.attributes),
        )
    return product_out(product)


@api.get("/api/v1/products", query=Page, response=ProductList)
async def list_products(request: web.Request, query: Page) -> ProductList:
    """Products, in the order they were added."""
    async with request.app[SESSIONS]() as session:
        rows = await registry.list_rows(session, Product, query.limit, query.offset)
        total = await registry.count_rows(session, Product)
    return ProductList(total=total, items=[product_out(p) for p in rows])


class SkuParams(Params):
    sku: str = Sku


@api.get("/api/v1/products/{sku}", params=SkuParams, response=ProductOut)
async def get_product(request: web.Request, params: SkuParams) -> ProductOut:
    """One product."""
    async with request.app[SESSIONS]() as session:
        return product_out(await registry.product_by_sku(session, params.sku))


# Lots -------------------------------------------------------------------------------------


class MaterialIn(Body):
    material: str = Name
    supplier: str = Name
    supplier_lot: str = Code
    quantity: str | None = Field(None, max_length=64)


class LotIn(Body):
    sku: str = Sku
    lot_no: str = Field(min_length=1, max_length=64, description="生产批次号")
    produced_on: date | None = None
    expires_on: date | None = None
    factory: str | None = Field(None, max_length=100)
    workshop: str | None = Field(None, max_length=100)
    line: str | None = Field(None, max_length=64)
    shift: str | None = Field(None, max_length=32)
    operator: str | None = Field(None, max_length=100)
    materials: list[MaterialIn] = Field(default_factory=list, max_length=200)


class MaterialOut(Out):
    material: str
    supplier: str
    supplier_lot: str
    quantity: str | None


class LotOut(Out):
    id: int
    sku: str
    lot_no: str
    produced_on: date | None
    expires_on: date | None
    factory: str | None
    workshop: str | None
    line: str | None
    shift: str | None
    operator: str | None
    materials: list[MaterialOut]
    inspection_report: str | None = Field(description="URL of the inspection report, if any")


class LotList(Out):
    total: int
    items: list[LotOut]


def lot_out(lot: Lot, sku: str, materials: list[Any]) -> LotOut:
    return LotOut(
        id=lot.id,
        sku=sku,
        lot_no=lot.lot_no,
        produced_on=lot.produced_on,
        expires_on=lot.expires_on,
        factory=lot.factory,
        workshop=lot.workshop,
        line=lot.line,
        shift=lot.shift,
        operator=lot.operator,
        materials=[
            MaterialOut(
                material=m.material,
                supplier=m.supplier,
                supplier_lot=m.supplier_lot,
                quantity=m.quantity,
            )
            for m in materials
        ],
        inspection_report=(
            f"/api/v1/lots/{lot.id}/report" if lot.inspection_report_id is not None else None
        ),
    )


@api.post("/api/v1/lots", body=LotIn, response=LotOut, status=201, errors=(404, 409))
async def add_lot(request: web.Request, body: LotIn) -> LotOut:
    """Add a production lot (生产批次) with the raw materials that went into it."""
    async with request.app[SESSIONS]() as session, session.begin():
        lot = await registry.create_lot(
            session,
            body.sku,
            body.lot_no,
            produced_on=body.produced_on,
            expires_on=body.expires_on,
            factory=body.factory,
            workshop=body.workshop,
            line=body.line,
            shift=body.shift,
            operator=body.operator,
            materials=[
                registry.MaterialSpec(m.material, m.supplier, m.supplier_lot, m.quantity)
                for m in body.materials
            ],
        )
        materials = await registry.lot_materials(session, [lot.id])
    return lot_out(lot, body.sku, materials[lot.id])


class LotQuery(Page):
    sku: str | None = Field(None, max_length=64, description="Only lots of this product")


@api.get("/api/v1/lots", query=LotQuery, response=LotList)
async def list_lots(request: web.Request, query: LotQuery) -> LotList:
    """Production lots, newest last; optionally of one product."""
    from sqlalchemy import func, select

    async with request.app[SESSIONS]() as session:
        where = []
        if query.sku is not None:
            product = await registry.product_by_sku(session, query.sku)
            where.append(Lot.product_id == product.id)
        rows = (
            await session.execute(
                select(Lot, Product.sku)
                .join(Product, Product.id == Lot.product_id)
                .where(*where)
                .order_by(Lot.id)
                .limit(query.limit)
                .offset(query.offset)
            )
        ).all()
        total = await session.scalar(select(func.count()).select_from(Lot).where(*where))
        materials = await registry.lot_materials(session, [lot.id for lot, _ in rows])
    return LotList(
        total=int(total or 0), items=[lot_out(lot, sku, materials[lot.id]) for lot, sku in rows]
    )


class LotParams(Params):
    lot_id: int = RecordId


@api.get("/api/v1/lots/{lot_id}", params=LotParams, response=LotOut)
async def get_lot(request: web.Request, params: LotParams) -> LotOut:
    """One production lot with its materials."""
    async with request.app[SESSIONS]() as session:
        lot = await registry.lot_by_id(session, params.lot_id)
        product = await session.get(Product, lot.product_id)
        assert product is not None
        materials = await registry.lot_materials(session, [lot.id])
    return lot_out(lot, product.sku, materials[lot.id])


class ReportOut(Out):
    filename: str
    content_type: str
    size: int
    sha256: str


@api.put(
    "/api/v1/lots/{lot_id}/report",
    params=LotParams,
    response=ReportOut,
    errors=(404, 413, 422),
    summary="Upload the lot's inspection report (PDF, PNG or JPEG as the raw body)",
)
async def put_lot_report(request: web.Request, params: LotParams) -> ReportOut:
    """Upload the lot's inspection report (PDF, PNG or JPEG as the raw body).

    The file name comes from the ``filename`` query parameter (default ``report``).
    """
    data = await request.read()
    filename = request.query.get("filename", "report")[:200]
    async with request.app[SESSIONS]() as session, session.begin():
        document = await registry.set_lot_report(
            session, params.lot_id, filename, request.content_type, data
        )
    return ReportOut(
        filename=document.filename,
        content_type=document.content_type,
        size=document.size,
        sha256=document.sha256,
    )


@api.get(
    "/api/v1/lots/{lot_id}/report", params=LotParams, produces="application/pdf", errors=(404,)
)
async def get_lot_report(request: web.Request, params: LotParams) -> web.Response:
    """The lot's inspection report file."""
    async with request.app[SESSIONS]() as session:
        document = await registry.lot_report(session, params.lot_id)
    return web.Response(
        body=document.data,
        content_type=document.content_type,
        headers={"Content-Disposition": f'attachment; filename="lot-{params.lot_id}-report"'},
    )


# Dealers, warehouses, stores --------------------------------------------------------------


class DealerIn(Body):
    code: str = Code
    name: str = Name
    region: str = Field(
        min_length=1, max_length=100, description="Default destination region of its orders"
    )
    authorised_regions: list[str] = Field(
        default_factory=list,
        max_length=500,
        description="Division codes (province, city or district) the dealer may sell in",
    )
    contact: str | None = Field(None, max_length=100)
    phone: str | None = Field(None, max_length=32)


class DealerOut(Out):
    code: str
    name: str
    region: str
    authorised_regions: list[str] = Field(default_factory=list)
    contact: str | None = None
    phone: str | None = None


class DealerList(Out):
    total: int
    items: list[DealerOut]


def dealer_out(d: Dealer, authorised: list[str]) -> DealerOut:
    return DealerOut(
        code=d.code,
        name=d.name,
        region=d.region,
        authorised_regions=authorised,
        contact=d.contact,
        phone=d.phone,
    )


@api.post("/api/v1/dealers", body=DealerIn, response=DealerOut, status=201, errors=(409,))
async def add_dealer(request: web.Request, body: DealerIn) -> DealerOut:
    """Add a dealer with the regions it is authorised to sell in."""
    async with request.app[SESSIONS]() as session, session.begin():
        dealer = await registry.create_dealer(
            session,
            body.code,
            body.name,
            body.region,
            authorised=body.authorised_regions,
            contact=body.contact,
            phone=body.phone,
        )
        authorised = await registry.authorised_regions(session, [dealer.id])
    return dealer_out(dealer, authorised[dealer.id])


@api.get("/api/v1/dealers", query=Page, response=DealerList)
async def list_dealers(request: web.Request, query: Page) -> DealerList:
    """Dealers with their authorised regions."""
    async with request.app[SESSIONS]() as session:
        rows = await registry.list_rows(session, Dealer, query.limit, query.offset)
        total = await registry.count_rows(session, Dealer)
        authorised = await registry.authorised_regions(session, [d.id for d in rows])
    return DealerList(total=total, items=[dealer_out(d, authorised[d.id]) for d in rows])


class WarehouseIn(Body):
    code: str = Code
    name: str = Name
    region_code: str | None = RegionCode
    address: str | None = Field(None, max_length=300)


class WarehouseOut(Out):
    code: str
    name: str
    region_code: str | None
    address: str | None


class WarehouseList(Out):
    total: int
    items: list[WarehouseOut]


def warehouse_out(w: Warehouse) -> WarehouseOut:
    return WarehouseOut(code=w.code, name=w.name, region_code=w.region_code, address=w.address)


@api.post("/api/v1/warehouses", body=WarehouseIn, response=WarehouseOut, status=201, errors=(409,))
async def add_warehouse(request: web.Request, body: WarehouseIn) -> WarehouseOut:
    """Add a warehouse."""
    async with request.app[SESSIONS]() as session, session.begin():
        w = await registry.create_warehouse(
            session, body.code, body.name, body.region_code, body.address
        )
    return warehouse_out(w)


@api.get("/api/v1/warehouses", query=Page, response=WarehouseList)
async def list_warehouses(request: web.Request, query: Page) -> WarehouseList:
    """Warehouses."""
    async with request.app[SESSIONS]() as session:
        rows = await registry.list_rows(session, Warehouse, query.limit, query.offset)
        total = await registry.count_rows(session, Warehouse)
    return WarehouseList(total=total, items=[warehouse_out(w) for w in rows])


class StoreIn(Body):
    code: str = Code
    name: str = Name
    dealer: str | None = Field(None, max_length=64, description="Code of the dealer it buys from")
    region_code: str | None = RegionCode
    address: str | None = Field(None, max_length=300)


class StoreOut(Out):
    code: str
    name: str
    dealer: str | None
    region_code: str | None
    address: str | None


class StoreList(Out):
    total: int
    items: list[StoreOut]


@api.post("/api/v1/stores", body=StoreIn, response=StoreOut, status=201, errors=(404, 409))
async def add_store(request: web.Request, body: StoreIn) -> StoreOut:
    """Add a store (a dealer's shop)."""
    async with request.app[SESSIONS]() as session, session.begin():
        s = await registry.create_store(
            session, body.code, body.name, body.dealer, body.region_code, body.address
        )
    return StoreOut(
        code=s.code, name=s.name, dealer=body.dealer, region_code=s.region_code, address=s.address
    )


@api.get("/api/v1/stores", query=Page, response=StoreList)
async def list_stores(request: web.Request, query: Page) -> StoreList:
    """Stores."""
    from sqlalchemy import select

    async with request.app[SESSIONS]() as session:
        rows = (
            await session.execute(
                select(Store, Dealer.code)
                .outerjoin(Dealer, Dealer.id == Store.dealer_id)
                .order_by(Store.id)
                .limit(query.limit)
                .offset(query.offset)
            )
        ).all()
        total = await registry.count_rows(session, Store)
    return StoreList(
        total=total,
        items=[
            StoreOut(
                code=s.code,
                name=s.name,
                dealer=dealer,
                region_code=s.region_code,
                address=s.address,
            )
            for s, dealer in rows
        ],
    )


# Administrative divisions -----------------------------------------------------------------


class RegionOut(Out):
    code: str
    name: str
    level: Literal["province", "city", "district"]
    full_name: str
    longitude: float
    latitude: float
    approximate: bool = Field(description="Coordinates borrowed from children or parent")


class RegionList(Out):
    items: list[RegionOut]


def region_out(r: regions.Region) -> RegionOut:
    return RegionOut(
        code=r.code,
        name=r.name,
        level=r.level.value,
        full_name=regions.full_name(r.code),
        longitude=r.longitude,
        latitude=r.latitude,
        approximate=r.approximate,
    )


class RegionParams(Params):
    code: str = Field(max_length=12)


@api.get("/api/v1/regions", response=RegionList)
async def list_provinces(request: web.Request) -> RegionList:
    """The provincial divisions."""
    return RegionList(items=[region_out(r) for r in regions.provinces()])


@api.get("/api/v1/regions/{code}", params=RegionParams, response=RegionList, errors=(422,))
async def region_and_children(request: web.Request, params: RegionParams) -> RegionList:
    """A division followed by the divisions directly below it."""
    try:
        r = regions.region(params.code)
    except regions.RegionCodeError as exc:
        raise InvalidRequestError(str(exc)) from None
    return RegionList(items=[region_out(r), *(region_out(c) for c in regions.children(r.code))])


# Imports ----------------------------------------------------------------------------------


class ImportQuery(Params):
    format: Literal["csv", "xlsx"] = Field("csv", description="Format of the uploaded file")


class ImportProblem(Out):
    row: int = Field(description="Row number in the file (1 = the header)")
    column: str
    problem: str


class ImportReport(Out):
    imported: int = Field(description="Rows added (0 when any row has a problem)")
    problems: list[ImportProblem]


def report_out(report: imports.Report) -> ImportReport:
    return ImportReport(
        imported=report.imported,
        problems=[
            ImportProblem(row=p.row, column=p.column, problem=p.problem) for p in report.problems
        ],
    )


@api.post(
    "/api/v1/products/import",
    query=ImportQuery,
    response=ImportReport,
    errors=(413, 422),
    summary="Import products from CSV or XLSX (raw body); all rows or none",
)
async def import_products(request: web.Request, query: ImportQuery) -> ImportReport:
    """Import products from CSV or XLSX (raw body); all rows or none.

    Columns: sku, name, name_en, gtin, spec, image_url, and attr:<name> for attributes.
    The answer lists every problem by row and column; with any problem nothing is imported.
    """
    data = await request.read()
    async with request.app[SESSIONS]() as session, session.begin():
        report = await imports.import_products(session, data, query.format)
    return report_out(report)


@api.post(
    "/api/v1/dealers/import",
    query=ImportQuery,
    response=ImportReport,
    errors=(413, 422),
    summary="Import dealers from CSV or XLSX (raw body); all rows or none",
)
async def import_dealers(request: web.Request, query: ImportQuery) -> ImportReport:
    """Import dealers from CSV or XLSX (raw body); all rows or none.

    Columns: code, name, region, authorised_regions (division codes separated by ``;``),
    contact, phone. With any problem nothing is imported.
    """
    data = await request.read()
    async with request.app[SESSIONS]() as session, session.begin():
        report = await imports.import_dealers(session, data, query.format)
    return report_out(report)
