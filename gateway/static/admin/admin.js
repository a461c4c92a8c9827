// The admin dashboard at /admin: signs in through the REST API, then reads sales, top products
// and orders from it and draws them. A file rather than an inline script, so the page's
// Content-Security-Policy can allow scripts from the gateway alone. Every text from the API is
// written with textContent, never as HTML.
"use strict";

(function () {
  // The tokens live in this tab's sessionStorage: never in a cookie, so no other site can
  // make the browser send them, and gone when the tab closes.
  const STORE_KEY = "ecommerce-admin-session";
  const STATUSES = ["PENDING", "PAID", "SHIPPED", "CANCELLED"];
  // Orders by status are counted a page at a time; past this many the count says "or more".
  const COUNT_PAGES = 10;
  const PAGE_SIZE = 100;
  const LATEST_ORDERS = 20;
  const TOP_PRODUCTS = 10;
  const SVG = "http://www.w3.org/2000/svg";
  const DAY_MS = 24 * 60 * 60 * 1000;

  const $ = (id) => document.getElementById(id);
  let session = null;

  class ApiError extends Error {
    constructor(status, body) {
      super((body && (body.detail || body.title)) || `The gateway answered ${status}.`);
      this.status = status;
      this.body = body || {};
    }
  }

  // ---- the API -------------------------------------------------------------------------

  function loadSession() {
    try {
      const stored = JSON.parse(sessionStorage.getItem(STORE_KEY) || "null");
      return stored && stored.access_token ? stored : null;
    } catch (error) {
      return null;
    }
  }

  function saveSession(value) {
    session = value;
    if (value) {
      sessionStorage.setItem(STORE_KEY, JSON.stringify(value));
    } else {
      sessionStorage.removeItem(STORE_KEY);
    }
  }

  // URLs are relative ("v1/..."): from /admin they name /v1/..., and behind a proxy that
  // mounts the gateway under a prefix, that prefix's /v1/...
  async function send(path, { method = "GET", body, token } = {}) {
    const headers = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (token) headers.authorization = `Bearer ${token}`;
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
    if (response.status === 204) return null;
    let parsed = null;
    try {
      parsed = await response.json();
    } catch (error) {
      parsed = null;
    }
    if (!response.ok) throw new ApiError(response.status, parsed);
    return parsed;
  }

  // One renewal at a time, shared by every call that met the expired token: a refresh token
  // is spent by its first use, and the server revokes the whole sign-in when one is reused.
  let renewal = null;

  function renewTokens(expired) {
    if (!session || !session.refresh_token) return Promise.resolve(false);
    // Renewed meanwhile by another call: use the new token.
    if (session.access_token !== expired) return Promise.resolve(true);
    if (!renewal) {
      renewal = send("v1/auth/refresh", {
        method: "POST",
        body: { refresh_token: session.refresh_token },
      })
        .then((pair) => {
          // Signed out meanwhile: the new pair is not kept.
          if (!session) return false;
          saveSession({ ...session, ...pair });
          return true;
        })
        .catch(() => false)
        .finally(() => {
          renewal = null;
        });
    }
    return renewal;
  }

  // A call as the signed-in admin; an expired access token is renewed once.
  async function api(path, options = {}) {
    if (!session) throw new ApiError(401, { detail: "Not signed in." });
    const token = session.access_token;
    try {
      return await send(path, { ...options, token });
    } catch (error) {
      if (error instanceof ApiError && error.status === 401 && (await renewTokens(token))) {
        return send(path, { ...options, token: session.access_token });
      }
      throw error;
    }
  }

  // ---- formatting ----------------------------------------------------------------------

  const dateFormat = new Intl.DateTimeFormat("en-GB", {
    day: "numeric",
    month: "short",
    year: "numeric",
    timeZone: "UTC",
  });
  const shortDateFormat = new Intl.DateTimeFormat("en-GB", {
    day: "numeric",
    month: "short",
    timeZone: "UTC",
  });
  const monthFormat = new Intl.DateTimeFormat("en-GB", {
    month: "short",
    year: "numeric",
    timeZone: "UTC",
  });
  const timeFormat = new Intl.DateTimeFormat("en-GB", {
    day: "numeric",
    month: "short",
    year: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    timeZone: "UTC",
  });

  function currencyFormat(code, compact) {
    try {
      return new Intl.NumberFormat("en", {
        style: "currency",
        currency: code,
        notation: compact ? "compact" : "standard",
      });
    } catch (error) {
      return null;
    }
  }

  // Money is integer minor units: the currency's own number of decimals makes it whole units.
  function money(value, compact = false) {
    const format = currencyFormat(value.currency_code, compact);
    if (!format) return `${value.amount_minor} ${value.currency_code} (minor units)`;
    const digits = currencyFormat(value.currency_code, false).resolvedOptions()
      .maximumFractionDigits;
    return format.format(value.amount_minor / 10 ** digits);
  }

  function when(value) {
    return value ? `${timeFormat.format(new Date(value))} UTC` : "";
  }

  function periodName(start, granularity, short = false) {
    const date = new Date(start);
    if (granularity === "month") return monthFormat.format(date);
    const day = short ? shortDateFormat.format(date) : dateFormat.format(date);
    return granularity === "week" && !short ? `week of ${day}` : day;
  }

  function isoDate(date) {
    return date.toISOString().slice(0, 10);
  }

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function svg(tag, attributes = {}, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function row(cells) {
    const tr = document.createElement("tr");
    for (const cell of cells) tr.append(cell);
    return tr;
  }

  function cell(text, className) {
    return element("td", text, className);
  }

  function emptyRow(tbody, columns, text) {
    const td = cell(text, "empty");
    td.colSpan = columns;
    tbody.replaceChildren(row([td]));
  }

  // ---- what the page shows -------------------------------------------------------------

  function showMessage(text, kind = "error") {
    const message = $("message");
    message.textContent = text;
    message.className = `notice ${kind}`;
    message.hidden = !text;
  }

  function showSignIn() {
    $("dashboard").hidden = true;
    $("session").hidden = true;
    $("sign-in").hidden = false;
  }

  function refusal(user) {
    const again = " Sign in with an administrator's account to see it.";
    if (!user || !user.role) {
      return `This dashboard is for administrators; your account is not an administrator's.${again}`;
    }
    const article = /^[aeiou]/.test(user.role) ? "an" : "a";
    return (
      `This dashboard is for administrators; you are signed in as ${article} ${user.role}` +
      ` (${user.email}).${again}`
    );
  }

  async function signOut(message) {
    const ending = session;
    saveSession(null);
    if (ending && ending.refresh_token) {
      // Revoke the refresh token too; the page forgets both tokens whatever the answer.
      send("v1/auth/logout", {
        method: "POST",
        body: { refresh_token: ending.refresh_token },
        token: ending.access_token,
      }).catch(() => {});
    }
    showSignIn();
    showMessage(message || "", message ? "error" : "info");
    if (!message) $("message").hidden = true;
    $("email").focus();
  }

  // A token that is not an admin's is refused here, and forgotten.
  async function refuse(user) {
    await signOut(refusal(user));
  }

  async function enter() {
    let user;
    try {
      user = await api("v1/users/me");
    } catch (error) {
      await signOut(
        error.status === 401 ? "Your session has ended; sign in again." : error.message,
      );
      return;
    }
    if (user.role !== "admin") {
      await refuse(user);
      return;
    }
    $("sign-in").hidden = true;
    $("message").hidden = true;
    $("signed-in-as").textContent = `Signed in as ${user.email}`;
    $("session").hidden = false;
    $("dashboard").hidden = false;
    // The sign-in form just vanished: keyboard focus goes to the top of the dashboard.
    $("main").focus();
    await refresh();
  }

  function chosenPeriod() {
    const granularity = $("granularity").value;
    const from = $("from").value;
    const to = $("to").value;
    if (!from || !to) throw new Error("Choose both dates of the period.");
    if (from > to) throw new Error("The period's first day must not be after its last.");
    const end = new Date(Date.parse(`${to}T00:00:00Z`) + DAY_MS);
    return { granularity, from, to, start: `${from}T00:00:00Z`, end: end.toISOString() };
  }

  async function refresh() {
    let period;
    try {
      period = chosenPeriod();
    } catch (error) {
      $("sales-status").textContent = error.message;
      return;
    }
    await Promise.all([
      loadSales(period),
      loadTopProducts(period),
      loadStatusCounts(),
      loadLatestOrders(),
    ]);
  }

  // Every section reports its own failure; a 403 means the account is no longer an admin's.
  async function guarded(load, report) {
    try {
      await load();
    } catch (error) {
      if (error instanceof ApiError && error.status === 403) {
        await refuse(null);
      } else if (error instanceof ApiError && error.status === 401) {
        await signOut("Your session has ended; sign in again.");
      } else {
        report(error.message);
      }
    }
  }

  // ---- sales ---------------------------------------------------------------------------

  function loadSales(period) {
    const status = $("sales-status");
    status.textContent = "Loading sales…";
    return guarded(
      async () => {
        const query = new URLSearchParams({
          granularity: period.granularity,
          start: period.start,
          end: period.end,
        });
        const sales = await api(`v1/analytics/sales?${query}`);
        drawSales(sales.periods, period);
        status.textContent = "";
      },
      (text) => {
        drawSales([], period);
        status.textContent = `Sales could not be loaded: ${text}`;
      },
    );
  }

  // A step of 1, 2 or 5 times a power of ten that splits `max` into at most `count` steps.
  function niceStep(max, count) {
    const rough = max / count;
    const power = 10 ** Math.floor(Math.log10(rough));
    for (const factor of [1, 2, 5, 10]) {
      if (factor * power >= rough) return factor * power;
    }
    return 10 * power;
  }

  function drawSales(periods, period) {
    const chart = $("sales-chart");
    const caption = $("sales-caption");
    const tbody = $("sales-table").querySelector("tbody");
    const granularity = period.granularity;
    const unit = { day: "day", week: "week", month: "month" }[granularity];
    if (!periods.length) {
      chart.replaceChildren();
      caption.textContent = "";
      emptyRow(tbody, 3, "No figures.");
      return;
    }
    const currency = periods[0].revenue.currency_code;
    const orders = periods.reduce((sum, p) => sum + p.order_count, 0);
    const revenue = periods.reduce((sum, p) => sum + p.revenue.amount_minor, 0);
    const best = periods.reduce((a, b) => (b.revenue.amount_minor > a.revenue.amount_minor ? b : a));
    const total = { amount_minor: revenue, currency_code: currency };
    const range = `${dateFormat.format(new Date(period.start))} to ${dateFormat.format(
      new Date(Date.parse(period.end) - DAY_MS),
    )}`;
    let summary = `Revenue per ${unit}, ${range}: ${orders} ${
      orders === 1 ? "order" : "orders"
    }, ${money(total)} in all.`;
    if (best.revenue.amount_minor > 0) {
      summary += ` Best ${unit}: ${periodName(best.period_start, granularity)}, ${money(
        best.revenue,
      )}.`;
    }

    // Geometry in the viewBox's units; the SVG scales to the width it is given.
    const width = 800;
    const height = 320;
    const margin = { top: 16, right: 16, bottom: 64, left: 80 };
    const plotWidth = width - margin.left - margin.right;
    const plotHeight = height - margin.top - margin.bottom;
    const max = Math.max(...periods.map((p) => p.revenue.amount_minor));
    const step = max > 0 ? Math.max(1, niceStep(max, 4)) : 100;
    const top = max > 0 ? Math.ceil(max / step) * step : step * 4;
    const y = (value) => margin.top + plotHeight - (value / top) * plotHeight;
    const slot = plotWidth / periods.length;
    const barWidth = Math.max(1, slot * 0.7);

    const root = svg("svg", {
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-label": summary,
      class: "sales-chart",
      "data-granularity": granularity,
      "data-currency": currency,
    });
    const grid = svg("g", { class: "grid", "aria-hidden": "true" });
    for (let value = 0; value <= top; value += step) {
      grid.append(
        svg("line", { x1: margin.left, x2: width - margin.right, y1: y(value), y2: y(value) }),
        svg(
          "text",
          { x: margin.left - 8, y: y(value), class: "tick y-tick", "dominant-baseline": "middle" },
          money({ amount_minor: value, currency_code: currency }, true),
        ),
      );
    }
    root.append(grid);

    const bars = svg("g", { class: "bars" });
    const labelEvery = Math.ceil(periods.length / 10);
    periods.forEach((p, index) => {
      const value = p.revenue.amount_minor;
      const x = margin.left + index * slot + (slot - barWidth) / 2;
      const bar = svg("rect", {
        class: "bar",
        x: x.toFixed(2),
        y: y(value).toFixed(2),
        width: barWidth.toFixed(2),
        height: (margin.top + plotHeight - y(value)).toFixed(2),
        "data-period": p.period_start,
        "data-orders": String(p.order_count),
        "data-revenue-minor": String(value),
      });
      bar.append(
        svg(
          "title",
          {},
          `${periodName(p.period_start, granularity)}: ${p.order_count} ${
            p.order_count === 1 ? "order" : "orders"
          }, ${money(p.revenue)}`,
        ),
      );
      bars.append(bar);
      if (index % labelEvery === 0) {
        root.append(
          svg(
            "text",
            {
              x: (x + barWidth / 2).toFixed(2),
              y: margin.top + plotHeight + 18,
              class: "tick x-tick",
              "aria-hidden": "true",
            },
            periodName(p.period_start, granularity, true),
          ),
        );
      }
    });
    root.append(bars);

    const axes = svg("g", { class: "axis", "aria-hidden": "true" });
    axes.append(
      svg("line", {
        x1: margin.left,
        x2: width - margin.right,
        y1: margin.top + plotHeight,
        y2: margin.top + plotHeight,
      }),
      svg("line", { x1: margin.left, x2: margin.left, y1: margin.top, y2: margin.top + plotHeight }),
      svg(
        "text",
        { x: margin.left + plotWidth / 2, y: height - 12, class: "axis-title" },
        { day: "Day (UTC)", week: "Week, from Monday (UTC)", month: "Month (UTC)" }[granularity],
      ),
      svg(
        "text",
        {
          x: 0,
          y: 0,
          class: "axis-title",
          transform: `translate(16 ${margin.top + plotHeight / 2}) rotate(-90)`,
        },
        `Revenue (${currency})`,
      ),
    );
    root.append(axes);
    chart.replaceChildren(root);
    caption.textContent = summary;

    tbody.replaceChildren(
      ...periods.map((p) => {
        const name = element("th", periodName(p.period_start, granularity));
        name.scope = "row";
        return row([name, cell(p.order_count, "number"), cell(money(p.revenue), "number")]);
      }),
    );
  }

  // ---- top products --------------------------------------------------------------------

  function loadTopProducts(period) {
    const tbody = $("top-products").querySelector("tbody");
    $("top-period").textContent = `Paid and shipped orders placed from ${dateFormat.format(
      new Date(period.start),
    )} to ${dateFormat.format(new Date(Date.parse(period.end) - DAY_MS))}, by units sold.`;
    emptyRow(tbody, 4, "Loading…");
    return guarded(
      async () => {
        const query = new URLSearchParams({
          start: period.start,
          end: period.end,
          limit: String(TOP_PRODUCTS),
        });
        const { products } = await api(`v1/analytics/top-products?${query}`);
        if (!products.length) {
          emptyRow(tbody, 4, "No sales in this period.");
          return;
        }
        tbody.replaceChildren(
          ...products.map((product, index) => {
            const tr = row([
              cell(index + 1, "number"),
              cell(product.product_name || product.product_id),
              cell(product.quantity, "number"),
              cell(money(product.revenue), "number"),
            ]);
            tr.dataset.productId = product.product_id;
            return tr;
          }),
        );
      },
      (text) => emptyRow(tbody, 4, `Top products could not be loaded: ${text}`),
    );
  }

  // ---- orders --------------------------------------------------------------------------

  async function countOrders(status) {
    let count = 0;
    let token = "";
    for (let page = 0; page < COUNT_PAGES; page += 1) {
      const query = new URLSearchParams({ status, page_size: String(PAGE_SIZE) });
      if (token) query.set("page_token", token);
      const answer = await api(`v1/orders?${query}`);
      count += answer.orders.length;
      token = answer.next_page_token;
      if (!token) return { count, more: false };
    }
    return { count, more: true };
  }

  function loadStatusCounts() {
    const list = $("orders-by-status");
    list.replaceChildren(element("p", "Counting…"));
    return guarded(
      async () => {
        const counts = await Promise.all(STATUSES.map(countOrders));
        list.replaceChildren(
          ...STATUSES.map((status, index) => {
            const item = element("div", null, `count status-${status.toLowerCase()}`);
            const { count, more } = counts[index];
            const value = element("dd", more ? `${count} or more` : count);
            value.dataset.count = String(count);
            item.dataset.status = status;
            item.append(element("dt", status), value);
            return item;
          }),
        );
      },
      (text) => list.replaceChildren(element("p", `Orders could not be counted: ${text}`)),
    );
  }

  function timelineList(events) {
    if (!events.length) return element("p", "No events recorded yet.");
    const list = element("ol", null, "timeline");
    for (const event of events) {
      const item = element("li");
      const time = element("time", when(event.time));
      if (event.time) time.dateTime = event.time;
      item.append(
        time,
        " ",
        element("code", event.type),
        element("span", ` from ${event.source}`, "source"),
        element("p", event.summary),
      );
      list.append(item);
    }
    return list;
  }

  async function toggleTimeline(button, panelRow, orderId) {
    const open = button.getAttribute("aria-expanded") === "true";
    button.setAttribute("aria-expanded", String(!open));
    button.textContent = open ? "Show timeline" : "Hide timeline";
    panelRow.hidden = open;
    if (open || panelRow.dataset.loaded === "true") return;
    const holder = panelRow.querySelector(".timeline-holder");
    holder.replaceChildren(element("p", "Loading the timeline…"));
    await guarded(
      async () => {
        const timeline = await api(`v1/orders/${encodeURIComponent(orderId)}/timeline`);
        holder.replaceChildren(timelineList(timeline.events));
        panelRow.dataset.loaded = "true";
      },
      (text) => holder.replaceChildren(element("p", `The timeline could not be loaded: ${text}`)),
    );
  }

  function loadLatestOrders() {
    const tbody = $("latest-orders").querySelector("tbody");
    emptyRow(tbody, 6, "Loading…");
    return guarded(
      async () => {
        const query = new URLSearchParams({ page_size: String(LATEST_ORDERS) });
        const { orders } = await api(`v1/orders?${query}`);
        if (!orders.length) {
          emptyRow(tbody, 6, "No orders yet.");
          return;
        }
        const rows = [];
        orders.forEach((order, index) => {
          const panelId = `timeline-${index}`;
          const button = element("button", "Show timeline", "secondary");
          button.type = "button";
          button.setAttribute("aria-expanded", "false");
          button.setAttribute("aria-controls", panelId);
          button.setAttribute("aria-describedby", `order-${index}`);
          const id = element("td");
          const code = element("code", order.id);
          code.id = `order-${index}`;
          id.append(code);
          const status = element("td");
          status.append(element("span", order.status, `badge status-${order.status.toLowerCase()}`));
          const items = order.items.map((item) => `${item.product_name} × ${item.quantity}`);
          const action = element("td");
          action.append(button);
          const line = row([
            cell(when(order.create_time)),
            id,
            status,
            cell(money(order.total), "number"),
            cell(items.join(", ")),
            action,
          ]);
          line.dataset.orderId = order.id;
          const holder = element("div", null, "timeline-holder");
          holder.id = panelId;
          const panelCell = element("td");
          panelCell.colSpan = 6;
          panelCell.append(holder);
          const panelRow = row([panelCell]);
          panelRow.className = "timeline-row";
          panelRow.hidden = true;
          button.addEventListener("click", () => toggleTimeline(button, panelRow, order.id));
          rows.push(line, panelRow);
        });
        tbody.replaceChildren(...rows);
      },
      (text) => emptyRow(tbody, 6, `Orders could not be loaded: ${text}`),
    );
  }

  // ---- start-up ------------------------------------------------------------------------

  function defaultPeriod() {
    const today = new Date();
    $("to").value = isoDate(today);
    $("from").value = isoDate(new Date(today.getTime() - 29 * DAY_MS));
  }

  async function signIn(event) {
    event.preventDefault();
    const form = event.target;
    const email = form.email.value.trim();
    const password = form.password.value;
    if (!email || !password) {
      showMessage("Enter your email and password.");
      return;
    }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const pair = await send("v1/auth/login", { method: "POST", body: { email, password } });
      form.password.value = "";
      saveSession(pair);
      await enter();
    } catch (error) {
      const text =
        error instanceof ApiError && error.status === 401
          ? "The email or password is wrong."
          : error instanceof ApiError && error.status === 429
            ? "Too many sign-in attempts; wait a moment and try again."
            : `Signing in failed: ${error.message}`;
      showMessage(text);
    } finally {
      button.disabled = false;
    }
  }

  function start() {
    defaultPeriod();
    $("sign-in-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", () => signOut());
    $("period-form").addEventListener("submit", (event) => {
      event.preventDefault();
      refresh();
    });
    session = loadSession();
    if (session) {
      enter();
    } else {
      showSignIn();
    }
  }

  start();
})();
