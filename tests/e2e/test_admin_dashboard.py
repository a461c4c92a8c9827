"""The admin dashboard in headless Chromium against the whole mesh, with the demo shop seeded
into it: the demo admin sees the demo's past sales drawn and tabled; the demo customer is
refused."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Locator,
    Page,
    Request,
)

from demo.accounts import ADMIN, CUSTOMER
from demo.history import SALES_CURRENCY, plan
from tests.e2e.browser import ARTIFACTS, BROWSER_TESTS, chromium
from tests.e2e.conftest import DemoShop, RunningMesh, sign_in

TOP_PRODUCTS = 10  # rows the page asks for
STORE_KEY = "ecommerce-admin-session"

pytestmark = BROWSER_TESTS


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


class Recorder:
    """Every request a page makes, and every error it reports (a refused script or style
    shows up as a console error)."""

    def __init__(self, page: Page) -> None:
        self.urls: list[str] = []
        self.errors: list[str] = []
        page.on("request", self._request)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _request(self, request: Request) -> None:
        self.urls.append(request.url)

    def _console(self, message: ConsoleMessage) -> None:
        # The API's refusals (403 for a customer) are logged by the browser as failed loads.
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.errors.append(message.text)


@dataclass(frozen=True)
class Bar:
    """A bar of the sales chart, as its data attributes carry it."""

    period: str
    orders: int
    revenue: int


@dataclass(frozen=True)
class DrawnBar:
    """A bar as drawn: its figures, where it stands and how tall it is."""

    figures: Bar
    x: float
    height: float


async def drawn_bars(bars: Locator) -> list[DrawnBar]:
    attributes: list[dict[str, str]] = await bars.evaluate_all(
        """(rects) => rects.map((rect) => ({
            period: rect.dataset.period || "",
            orders: rect.dataset.orders || "-1",
            revenue: rect.dataset.revenueMinor || "-1",
            x: rect.getAttribute("x") || "NaN",
            height: rect.getAttribute("height") || "NaN",
        }))"""
    )
    return [
        DrawnBar(
            Bar(bar["period"], int(bar["orders"]), int(bar["revenue"])),
            float(bar["x"]),
            float(bar["height"]),
        )
        for bar in attributes
    ]


def bars_of(periods: list[dict[str, Any]]) -> list[Bar]:
    """The bars the API's periods call for."""
    return [Bar(p["period_start"], p["order_count"], p["revenue"]["amount_minor"]) for p in periods]


@dataclass(frozen=True)
class Sales:
    orders: int
    revenue: int


def planned_sales(
    shop: DemoShop, first: date, last: date
) -> tuple[dict[date, Sales], Counter[str]]:
    """The demo's past sales placed from `first` to `last` (included): orders and revenue by
    day, units by product name. An order whose day depends on when during the seeding it was
    dated (around midnight) is left out."""
    days: dict[date, Sales] = {}
    units: Counter[str] = Counter()
    for order in plan():
        day = (shop.started - order.placed_ago).date()
        if not order.sold or day != (shop.finished - order.placed_ago).date():
            continue
        if not first <= day <= last:
            continue
        so_far = days.get(day, Sales(0, 0))
        revenue = sum(line.quantity * line.item.price_minor for line in order.lines)
        days[day] = Sales(so_far.orders + 1, so_far.revenue + revenue)
        units.update({line.item.name: line.quantity for line in order.lines})
    return days, units


def usd(minor: int) -> str:
    """An amount of US cents as the page writes it."""
    return f"${minor / 100:,.2f}"


async def sign_in_on(page: Page, email: str, password: str) -> None:
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()


async def shown_period(page: Page) -> tuple[date, date]:
    """The first and last day (included) of the period the page shows."""
    first = await page.get_by_label("From").input_value()
    last = await page.get_by_label("To (included)").input_value()
    return date.fromisoformat(first), date.fromisoformat(last)


async def period_params(page: Page) -> dict[str, str]:
    """The period the page shows, as the analytics API takes it."""
    first, last = await shown_period(page)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), UTC)
    return {
        "start": f"{first.isoformat()}T00:00:00Z",
        "end": end.isoformat().replace("+00:00", "Z"),
    }


async def expected_sales(
    mesh: RunningMesh, admin: dict[str, str], page: Page, granularity: str = "day"
) -> list[dict[str, Any]]:
    """What the API answers for the period the page shows (its From and To, To included)."""
    response = await mesh.client.get(
        "/v1/analytics/sales",
        params={"granularity": granularity, **await period_params(page)},
        headers=admin,
    )
    assert response.status_code == 200, response.text
    periods: list[dict[str, Any]] = response.json()["periods"]
    return periods


async def expected_top_products(
    mesh: RunningMesh, admin: dict[str, str], page: Page
) -> list[dict[str, Any]]:
    response = await mesh.client.get(
        "/v1/analytics/top-products",
        params={**await period_params(page), "limit": str(TOP_PRODUCTS)},
        headers=admin,
    )
    assert response.status_code == 200, response.text
    products: list[dict[str, Any]] = response.json()["products"]
    return products


async def test_the_dashboard_shows_the_demo_shops_sales_and_refuses_its_customer(
    demo_shop: DemoShop, browser: Browser
) -> None:
    mesh = demo_shop.mesh
    admin = await sign_in(mesh.client, ADMIN)

    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    recorder = Recorder(page)
    await page.goto(f"{mesh.url}/admin")
    await sign_in_on(page, ADMIN.email, ADMIN.password)
    await page.locator("#signed-in-as").filter(has_text=ADMIN.email).wait_for()

    # The chart: a bar per day of the 30 the page shows by default, each carrying the figures
    # the API gives for that day (other tests' orders included).
    bars = page.locator("svg.sales-chart rect.bar")
    await bars.first.wait_for(state="attached")
    await page.locator("#sales-status").filter(has_text="Loading").wait_for(state="hidden")
    periods = await expected_sales(mesh, admin, page)
    assert len(periods) == 30
    drawn = await drawn_bars(bars)
    assert [bar.figures for bar in drawn] == bars_of(periods)

    # The demo's past sales of those days are among them: many days with sales, each at least
    # the orders and revenue the demo wrote for it.
    first, last = await shown_period(page)
    planned, units = planned_sales(demo_shop, first, last)
    assert len(planned) > 10, planned
    by_day = {date.fromisoformat(bar.figures.period[:10]): bar.figures for bar in drawn}
    for day, sales in planned.items():
        assert by_day[day].orders >= sales.orders, (day, by_day[day], sales)
        assert by_day[day].revenue >= sales.revenue, (day, by_day[day], sales)
    assert sum(bar.figures.orders > 0 for bar in drawn) >= len(planned)

    # Drawn to scale: one after another by day, each as tall as its revenue makes it beside
    # the tallest, and an empty day flat on the axis.
    xs = [bar.x for bar in drawn]
    assert xs == sorted(set(xs))
    tallest = max(drawn, key=lambda bar: bar.figures.revenue)
    assert tallest.height > 0
    for bar in drawn:
        share = bar.figures.revenue / tallest.figures.revenue
        assert bar.height == pytest.approx(tallest.height * share, abs=0.05), bar
    # Named: the tallest bar says what it holds.
    title = await bars.nth(drawn.index(tallest)).locator("title").text_content() or ""
    assert f": {tallest.figures.orders} order" in title, title
    # The same figures in words, for those who cannot see the chart.
    label = await page.locator("svg.sales-chart").get_attribute("aria-label") or ""
    assert f"{sum(bar.figures.orders for bar in drawn)} orders" in label
    assert await page.locator("#sales-table tbody tr").count() == len(periods)

    # The top products of the period, as the API ranks them, the demo's best seller among
    # them with at least the units the demo sold of it.
    rows = page.locator("#top-products tbody tr[data-product-id]")
    await rows.first.wait_for()
    top = await expected_top_products(mesh, admin, page)
    shown = [
        (await row.get_attribute("data-product-id"), await row.locator("td").all_text_contents())
        for row in await rows.all()
    ]
    assert all(p["revenue"]["currency_code"] == SALES_CURRENCY for p in top), top
    assert shown == [
        (
            p["product_id"],
            [str(rank), p["product_name"], str(p["quantity"]), usd(p["revenue"]["amount_minor"])],
        )
        for rank, p in enumerate(top, start=1)
    ]
    listed = {cells[1]: int(cells[2]) for _, cells in shown}
    best = max(units.values())
    best_sellers = [name for name, sold in units.items() if sold == best]
    for name in best_sellers:
        assert listed.get(name, 0) >= best, (name, best, listed)
    await page.screenshot(path=ARTIFACTS / "admin-dashboard-by-day.png", full_page=True)

    # The same period by month: a bar per month it touches, the last this month's.
    await page.get_by_label("Group by").select_option("month")
    await page.get_by_role("button", name="Show", exact=True).click()
    await page.locator("svg.sales-chart[data-granularity='month']").wait_for()
    months = await expected_sales(mesh, admin, page, "month")
    month_bars = [bar.figures for bar in await drawn_bars(bars)]
    assert month_bars == bars_of(months)
    assert month_bars[-1].period.startswith(last.isoformat()[:7])
    assert sum(bar.orders for bar in month_bars) >= sum(bar.figures.orders for bar in drawn)

    # Orders by status: at least the demo's of each.
    planned_statuses = Counter(order.status for order in plan())
    for status, count in planned_statuses.items():
        shown_count = page.locator(f"#orders-by-status [data-status='{status}'] dd")
        await shown_count.wait_for()
        assert int(await shown_count.get_attribute("data-count") or 0) >= count, status

    # The timeline of the first paid order among the latest, opened from the keyboard, as
    # the API has it.
    latest = (
        page.locator("#latest-orders tr[data-order-id]")
        .filter(has=page.locator(".badge.status-paid"))
        .first
    )
    await latest.wait_for()
    order_id = await latest.get_attribute("data-order-id")
    toggle = latest.get_by_role("button")
    assert await toggle.text_content() == "Show timeline"
    assert await toggle.get_attribute("aria-expanded") == "false"
    await toggle.focus()
    await page.keyboard.press("Enter")
    assert await toggle.get_attribute("aria-expanded") == "true"
    assert await toggle.text_content() == "Hide timeline"
    timeline = page.locator(f"#{await toggle.get_attribute('aria-controls')} ol.timeline")
    await timeline.wait_for()
    events = await timeline.locator("code").all_text_contents()
    assert "order.created" in events and "payment.succeeded" in events
    recorded = await mesh.client.get(f"/v1/orders/{order_id}/timeline", headers=admin)
    assert recorded.status_code == 200, recorded.text
    # Later events (an email sent meanwhile) may follow what the page showed.
    assert [event["type"] for event in recorded.json()["events"]][: len(events)] == events
    await page.screenshot(path=ARTIFACTS / "admin-dashboard-by-month.png", full_page=True)

    # The token is in the tab's session storage, and no cookie was ever set.
    assert await page.evaluate("Object.keys(sessionStorage)") == [STORE_KEY]
    assert await context.cookies() == []

    # An access token the gateway no longer takes is renewed with the refresh token, once.
    await page.evaluate(
        """(key) => {
            const stored = JSON.parse(sessionStorage.getItem(key));
            sessionStorage.setItem(key, JSON.stringify({...stored, access_token: "stale"}));
        }""",
        STORE_KEY,
    )
    seen = len(recorder.urls)
    await page.reload()
    await page.locator(f"#latest-orders tr[data-order-id='{order_id}']").wait_for()
    await bars.first.wait_for(state="attached")
    renewals = [url for url in recorder.urls[seen:] if urlsplit(url).path == "/v1/auth/refresh"]
    assert len(renewals) == 1

    # The demo customer is refused with a sentence, and the dashboard stays hidden.
    await page.get_by_role("button", name="Sign out").click()
    await sign_in_on(page, CUSTOMER.email, CUSTOMER.password)
    message = page.get_by_role("alert")
    await message.filter(has_text="for administrators").wait_for()
    text = await message.text_content() or ""
    assert text.startswith("This dashboard is for administrators; you are signed in as a customer")
    assert CUSTOMER.email in text
    assert await page.locator("#dashboard").is_hidden()
    assert await page.evaluate("Object.keys(sessionStorage)") == []
    await page.screenshot(path=ARTIFACTS / "admin-dashboard-refused.png", full_page=True)
    await context.close()

    assert recorder.urls, "the page made requests"
    outside = [url for url in recorder.urls if urlsplit(url).hostname != "127.0.0.1"]
    assert outside == []
    assert recorder.errors == []
