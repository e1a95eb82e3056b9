// The Tollgate console: every page is drawn from the same /v1 API scripts use, called with
// the session cookie (and the session's CSRF token on changes). Text from the API is only
// ever set as text, never as markup.
"use strict";

const state = { session: null, route: 0 };

/** An element `tag` with `attributes` and `children` (strings become text). */
function h(tag, attributes = {}, ...children) {
  const svg = ["svg", "rect", "text", "line", "g", "title"].includes(tag);
  const element = svg
    ? document.createElementNS("http://www.w3.org/2000/svg", tag)
    : document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** Calls the API: JSON in and out; a problem becomes an Error with its detail. */
async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && state.session) headers["X-CSRF-Token"] = state.session.csrf;
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const error = new Error((data && (data.detail || data.title)) || response.statusText);
    error.status = response.status;
    throw error;
  }
  return data;
}

function show(...children) {
  const main = document.getElementById("main");
  main.replaceChildren(...children.flat());
}

function failure(error) {
  return h("p", { class: "error", role: "alert" }, error.message);
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = Number(n) || 0;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

function money(n) {
  const value = Number(n) || 0;
  if (value === 0) return "0";
  return value < 0.01 ? value.toPrecision(3) : value.toFixed(2);
}

function copyButton(text, label) {
  return h("button", {
    type: "button",
    class: "secondary",
    "aria-label": `Copy ${label}`,
    onclick: async (event) => {
      await navigator.clipboard.writeText(text).catch(() => {});
      event.target.textContent = "Copied";
    },
  }, "Copy");
}

/** A bar chart of `values` by `labels` as SVG, titled `title`. */
function barChart(title, labels, values, format) {
  const width = 900, height = 260, left = 90, bottom = 60, top = 30;
  const max = Math.max(...values, 0) || 1;
  const step = Math.min((width - left - 20) / Math.max(labels.length, 1), 120);
  const bars = labels.map((label, i) => {
    const barHeight = ((height - top - bottom) * values[i]) / max;
    const x = left + i * step + step * 0.15;
    const y = height - bottom - barHeight;
    return h("g", {},
      h("rect", { class: "bar", x, y, width: step * 0.7, height: Math.max(barHeight, 0.5) },
        h("title", {}, `${label}: ${format(values[i])}`)),
      h("text", { x: x + step * 0.35, y: height - bottom + 16, "text-anchor": "middle" }, label),
      h("text", { x: x + step * 0.35, y: y - 4, "text-anchor": "middle" }, format(values[i])));
  });
  return h("svg", {
    class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title,
  },
    h("title", {}, title),
    h("text", { x: left, y: 18 }, title),
    h("line", { class: "axis", x1: left, y1: height - bottom, x2: width - 10, y2: height - bottom }),
    h("line", { class: "axis", x1: left, y1: top, x2: left, y2: height - bottom }),
    h("text", { x: left - 6, y: top + 4, "text-anchor": "end" }, format(max)),
    h("text", { x: left - 6, y: height - bottom, "text-anchor": "end" }, format(0)),
    bars);
}

function table(columns, rows) {
  return h("table", {},
    h("thead", {}, h("tr", {}, columns.map(([name, , numeric]) =>
      h("th", { scope: "col", class: numeric ? "number" : undefined }, name)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, columns.map(([, cell, numeric]) =>
      h("td", { class: numeric ? "number" : undefined }, cell(row)))))));
}

// --- Signing in and out -------------------------------------------------------------

function signInPage(message) {
  const status = h("p", { role: "status" }, message || "");
  const signIn = (body, inputs) => async (event) => {
    event.preventDefault();
    try {
      state.session = await api("POST", "/console/session", body());
      inputs.forEach((input) => { input.value = ""; });
      start();
    } catch (error) {
      status.replaceChildren(failure(error));
    }
  };
  const key = h("input", { id: "api-key", name: "api_key", type: "password", autocomplete: "off", required: true });
  const byKey = h("form", { onsubmit: signIn(() => ({ api_key: key.value }), [key]) },
    h("label", { for: "api-key" }, "API key"),
    key,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Sign in")));
  const login = h("input", { id: "login-user", name: "login", autocomplete: "username", required: true });
  const password = h("input", { id: "login-password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const byLogin = h("form", {
    onsubmit: signIn(() => ({ login: login.value, password: password.value }), [password]),
  },
    h("label", { for: "login-user" }, "Login"), login,
    h("label", { for: "login-password" }, "Password"), password,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Sign in with login")));
  document.getElementById("nav").replaceChildren();
  document.getElementById("who").replaceChildren();
  show(h("h1", {}, "Sign in"),
    h("section", { class: "card" },
      h("h2", {}, "With an API key"),
      h("p", { class: "muted" }, "The API key your provider gave you (tg_…): order and manage channels."),
      byKey),
    h("section", { class: "card" },
      h("h2", {}, "With a login"),
      h("p", { class: "muted" }, "A channel's login and password (as for psql): see the catalog, your own queries and usage."),
      byLogin),
    status);
}

async function signOut() {
  await api("DELETE", "/console/session").catch(() => {});
  state.session = null;
  location.hash = "";
  signInPage("Signed out.");
}

// --- Tenant pages -------------------------------------------------------------------

async function catalogPage() {
  const catalog = await api("GET", "/v1/catalog?limit=500");
  const rows = catalog.items.map((item) => h("section", { class: "card" },
    h("h2", {}, item.dataset),
    h("p", {}, item.description || ""),
    h("p", { class: "muted" },
      `Price per GiB returned ${money(item.prices.currency_per_gib_returned)}, `
      + `per GiB scanned ${money(item.prices.currency_per_gib_scanned)}`),
    h("details", {}, h("summary", {}, `${item.columns.length} columns`),
      table([["Column", (c) => c.name], ["Type", (c) => c.type], ["Description", (c) => c.description || ""]],
        item.columns)),
    state.session.role === "tenant" && h("div", { class: "actions" },
      h("a", { href: `#/channels?dataset=${encodeURIComponent(item.dataset)}` },
        `Order a channel of ${item.dataset}`))));
  return [h("h1", {}, "Catalog"), rows.length ? rows : h("p", {}, "No dataset is granted to you.")];
}

/** Connection strings for the credentials of a ready channel. */
function connectionStrings(kind, login, password, connection) {
  const c = connection || {};
  const lines = [];
  if (kind === "postgres") {
    lines.push(["psql", `psql "host=${c.host} port=${c.port} dbname=${c.database} user=${login} password=${password}"`]);
    lines.push(["JDBC", `jdbc:postgresql://${c.host}:${c.port}/${c.database}?user=${login}&password=${password}`]);
    lines.push(["ODBC", `Driver={PostgreSQL Unicode};Server=${c.host};Port=${c.port};Database=${c.database};Uid=${login};Pwd=${password};`]);
    lines.push(["Python", `psycopg.connect(host="${c.host}", port=${c.port}, dbname="${c.database}", user="${login}", password="${password}")`]);
  } else if (kind === "flight") {
    lines.push(["Flight SQL", `adbc_driver_flightsql.dbapi.connect("${c.flight_uri}", db_kwargs={"username": "${login}", "password": "${password}"})`]);
  } else if (kind === "http") {
    lines.push(["curl", `curl -H "Authorization: Bearer ${c.token || `${login}.${password}`}" ${c.base_url}/v1/data`]);
  } else if (kind === "file") {
    lines.push(["Delta Sharing profile", JSON.stringify(c.profile || c, null, 2)]);
  } else if (kind === "nats") {
    lines.push(["NATS URL", c.nats_url], ["Subject", c.subject], ["Credentials (.creds)", c.creds]);
  } else if (kind === "mqtt") {
    lines.push(["MQTT URL", c.mqtt_url], ["Topic", c.topic], ["Client id", c.client_id]);
  }
  return lines.filter(([, text]) => text);
}

function credentialsCard(title, kind, login, password, connection) {
  const items = [["Login", login], ["Password", password], ...connectionStrings(kind, login, password, connection)];
  return h("section", { class: "card", id: "credentials", "aria-live": "polite" },
    h("h2", {}, title),
    h("p", { class: "muted" }, "Shown once: copy them now."),
    h("div", { class: "credential" }, items.flatMap(([label, text]) => [
      h("span", {}, label),
      h("pre", { class: "secret", "data-label": label }, text),
      copyButton(text, label),
    ])));
}

/** Waits for the ready (or failed) event of `order`; other events stay unread. */
async function orderOutcome(order) {
  let after = 0;
  for (let attempt = 0; attempt < 12; attempt += 1) {
    const events = await api("GET", `/v1/events?order=${encodeURIComponent(order)}&after=${after}&wait=10`);
    after = events.next_after ?? after;
    const found = events.items.find((event) => event.type === "channel.ready" || event.type === "order.failed");
    if (found) return found;
  }
  throw new Error("the order did not become ready in time");
}

async function channelsPage(query) {
  const [catalog, channels] = await Promise.all([
    api("GET", "/v1/catalog?limit=500"),
    api("GET", "/v1/channels"),
  ]);
  const first = catalog.items[0] || { channel_kinds: [], profiles: [] };
  const dataset = h("select", { id: "order-dataset" }, catalog.items.map((item) =>
    h("option", { value: item.dataset, selected: item.dataset === query.get("dataset") }, item.dataset)));
  const kind = h("select", { id: "order-kind" }, first.channel_kinds.map((k) => h("option", { value: k }, k)));
  const profile = h("select", { id: "order-profile" },
    h("option", { value: "" }, "my default"), first.profiles.map((p) => h("option", { value: p }, p)));
  const columns = h("input", { id: "order-columns", placeholder: "all granted columns" });
  const filter = h("input", { id: "order-filter", placeholder: "e.g. o_orderdate >= DATE '1997-01-01'" });
  const status = h("div", { role: "status", id: "order-status" });
  const form = h("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      const chosen = { dataset: dataset.value };
      if (columns.value.trim()) chosen.columns = columns.value.split(",").map((c) => c.trim()).filter(Boolean);
      if (filter.value.trim()) chosen.row_filter = filter.value.trim();
      const body = { kind: kind.value, datasets: [chosen] };
      if (profile.value) body.profile = profile.value;
      try {
        status.replaceChildren(h("p", {}, "Ordering…"));
        const order = await api("POST", "/v1/channels", body);
        status.replaceChildren(h("p", {}, `Order ${order.id} is ${order.state}; waiting until it is ready…`));
        const outcome = await orderOutcome(order.id);
        if (outcome.type !== "channel.ready") {
          status.replaceChildren(h("p", { class: "error" }, `Order ${order.id} failed: ${outcome.reason || ""}`));
          return;
        }
        status.replaceChildren(h("p", {}, `Channel ${outcome.channel} is ready.`),
          credentialsCard(`Credentials of ${outcome.channel}`, outcome.kind, outcome.login,
            outcome.password, outcome.connection));
        drawChannelList(await api("GET", "/v1/channels"), list, status);
      } catch (error) {
        status.replaceChildren(failure(error));
      }
    },
  },
    h("label", { for: "order-dataset" }, "Dataset"), dataset,
    h("label", { for: "order-kind" }, "Kind"), kind,
    h("label", { for: "order-profile" }, "Profile"), profile,
    h("label", { for: "order-columns" }, "Columns (comma-separated)"), columns,
    h("label", { for: "order-filter" }, "Row filter"), filter,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Order channel")));
  const list = h("div", { id: "channel-list" });
  drawChannelList(channels, list, status);
  return [h("h1", {}, "Channels"),
    h("section", { class: "card" }, h("h2", {}, "Order a channel"), form, status),
    h("h2", {}, "Your channels"), list];
}

function drawChannelList(channels, list, status) {
  const active = channels.items.filter((c) => c.state !== "revoked");
  list.replaceChildren(active.length ? table([
    ["Channel", (c) => c.id],
    ["Kind", (c) => c.kind],
    ["Datasets", (c) => c.datasets.map((d) => d.dataset).join(", ")],
    ["State", (c) => c.state],
    ["Logins", (c) => c.logins.map((l) => l.login).join(", ")],
    ["", (c) => h("div", { class: "actions" },
      h("button", {
        type: "button", class: "secondary", "aria-label": `Rotate the credentials of ${c.id}`,
        onclick: async () => {
          try {
            const rotated = await api("POST", `/v1/channels/${encodeURIComponent(c.id)}/credentials`);
            status.replaceChildren(credentialsCard(`New credentials of ${c.id}`, c.kind, rotated.login,
              rotated.password, rotated.connection));
            drawChannelList(await api("GET", "/v1/channels"), list, status);
          } catch (error) { status.replaceChildren(failure(error)); }
        },
      }, "Rotate"),
      h("button", {
        type: "button", class: "danger", "aria-label": `Revoke ${c.id}`,
        onclick: async () => {
          try {
            await api("DELETE", `/v1/channels/${encodeURIComponent(c.id)}`);
            status.replaceChildren(h("p", {}, `Channel ${c.id} is revoked.`));
            drawChannelList(await api("GET", "/v1/channels"), list, status);
          } catch (error) { status.replaceChildren(failure(error)); }
        },
      }, "Revoke"))],
  ], active) : h("p", {}, "No channel yet."));
}

async function usagePage(admin) {
  const base = admin ? "/v1/admin/usage" : "/v1/usage";
  const [byDay, byGroup] = await Promise.all([
    api("GET", `${base}?group_by=day`),
    api("GET", `${base}?group_by=${admin ? "tenant" : "dataset"}`),
  ]);
  const days = byDay.items.slice(-31);
  const group = admin ? "tenant" : "dataset";
  return [h("h1", {}, admin ? "Usage across tenants" : "Usage and cost"),
    h("p", { class: "muted", id: "usage-total" },
      `${byDay.total.queries} queries, ${bytes(byDay.total.bytes_returned)} returned, `
      + `${bytes(byDay.total.bytes_scanned)} scanned, cost ${money(byDay.total.cost)}`),
    barChart("Queries per day", days.map((d) => d.day), days.map((d) => d.queries), (v) => String(v)),
    barChart("Cost per day", days.map((d) => d.day), days.map((d) => d.cost), money),
    barChart(`Cost per ${group}`, byGroup.items.map((d) => d[group]), byGroup.items.map((d) => d.cost), money),
    h("h2", {}, `Per ${group}`),
    table([
      [group === "tenant" ? "Tenant" : "Dataset", (d) => d[group]],
      ["Queries", (d) => d.queries, true],
      ["Returned", (d) => bytes(d.bytes_returned), true],
      ["Scanned", (d) => bytes(d.bytes_scanned), true],
      ["Cost", (d) => money(d.cost), true],
    ], byGroup.items)];
}

async function queriesPage() {
  const status = h("div", { role: "status", id: "query-status" });
  const list = h("div", { id: "query-list" });
  const draw = async () => {
    const running = await api("GET", "/v1/queries");
    list.replaceChildren(running.items.length ? table([
      ["Query", (q) => q.id, true],
      ["Login", (q) => q.user],
      ["State", (q) => q.state],
      ["Submitted", (q) => q.submitted_at],
      ["SQL", (q) => q.sql],
      ["", (q) => h("button", {
        type: "button", class: "danger", "aria-label": `Cancel query ${q.id}`,
        onclick: async () => {
          try {
            await api("DELETE", `/v1/queries/${q.id}`);
            status.replaceChildren(h("p", {}, `Query ${q.id} is cancelled.`));
            await draw();
          } catch (error) { status.replaceChildren(failure(error)); }
        },
      }, "Cancel")],
    ], running.items) : h("p", {}, "No query is running."));
  };
  await draw();
  return [h("h1", {}, "Running queries"),
    h("p", { class: "muted" }, "Your queries running or queued on this gateway."),
    h("div", { class: "actions" }, h("button", { type: "button", class: "secondary", onclick: draw }, "Refresh")),
    status, list];
}

// --- Provider pages -----------------------------------------------------------------

async function tenantsPage() {
  const tenants = await api("GET", "/v1/admin/tenants");
  const entitlements = await Promise.all(tenants.items.map((t) =>
    api("GET", `/v1/admin/tenants/${encodeURIComponent(t.id)}/entitlements`)));
  const grants = (e) => (e.columns ? `${e.columns.length} columns` : "all columns")
    + (e.row_filter ? `, rows where ${e.row_filter}` : "");
  return [h("h1", {}, "Tenants"), table([
    ["Tenant", (t) => t.id],
    ["Profile", (t) => t.profile || ""],
    ["Suspended", (t) => (t.suspended ? "yes" : "no")],
  ], tenants.items),
  tenants.items.map((t, i) => h("section", { class: "card" },
    h("h2", {}, `Entitlements of ${t.id}`),
    table([["Dataset", (e) => e.dataset], ["Grant", grants],
      ["From", (e) => (e.configured ? "configuration" : "API")]], entitlements[i].items)))];
}

async function datasetsPage() {
  const datasets = await api("GET", "/v1/admin/datasets");
  return [h("h1", {}, "Datasets and prices"), table([
    ["Dataset", (d) => d.id],
    ["Source", (d) => `${d.source}: ${d.path}`],
    ["Description", (d) => d.description],
    ["Per GiB returned", (d) => money(d.price_per_gib), true],
    ["Per GiB scanned", (d) => money(d.price_per_gib_scanned), true],
  ], datasets.items)];
}

async function auditPage() {
  const audit = await api("GET", "/v1/admin/audit");
  const recent = audit.items.slice(-200).reverse();
  return [h("h1", {}, "Audit trail"), table([
    ["At", (e) => e.at],
    ["Actor", (e) => e.actor],
    ["Action", (e) => e.action],
    ["Target", (e) => e.target],
    ["Outcome", (e) => e.outcome],
  ], recent)];
}

async function refusalsPage() {
  const refusals = await api("GET", "/v1/admin/refusals?limit=200");
  return [h("h1", {}, "Recent refusals"),
    h("p", { class: "muted" }, "Queries a profile's limits refused or stopped, newest first."),
    refusals.items.length ? table([
      ["At", (r) => r.at],
      ["Tenant", (r) => r.tenant],
      ["Login", (r) => r.login],
      ["Protocol", (r) => r.protocol],
      ["SQLSTATE", (r) => r.sqlstate || ""],
      ["SQL", (r) => r.sql || r.sql_hash.slice(0, 12)],
    ], refusals.items) : h("p", {}, "No query was refused.")];
}

// --- Navigation ---------------------------------------------------------------------

const TENANT_PAGES = [["catalog", "Catalog", catalogPage], ["channels", "Channels", channelsPage],
  ["queries", "Queries", queriesPage], ["usage", "Usage", () => usagePage(false)]];
const LOGIN_PAGES = [["catalog", "Catalog", catalogPage], ["queries", "Queries", queriesPage],
  ["usage", "Usage", () => usagePage(false)]];
const ADMIN_PAGES = [["tenants", "Tenants", tenantsPage], ["datasets", "Datasets", datasetsPage],
  ["usage", "Usage", () => usagePage(true)], ["refusals", "Refusals", refusalsPage],
  ["audit", "Audit", auditPage]];
const PAGES = { tenant: TENANT_PAGES, login: LOGIN_PAGES, admin: ADMIN_PAGES };

async function route() {
  if (!state.session) return;
  const pages = PAGES[state.session.role] || LOGIN_PAGES;
  const [path, search] = location.hash.replace(/^#\/?/, "").split("?");
  const page = pages.find(([name]) => name === path) || pages[0];
  document.getElementById("nav").replaceChildren(...pages.map(([name, title]) =>
    h("a", { href: `#/${name}`, "aria-current": name === page[0] ? "page" : undefined }, title)));
  document.title = `${page[1]} · Tollgate console`;
  // Only the latest navigation draws: an earlier page still loading is dropped.
  const mine = ++state.route;
  try {
    const content = await page[2](new URLSearchParams(search || ""));
    if (mine !== state.route) return;
    show(...content);
    document.getElementById("main").focus();
  } catch (error) {
    if (mine !== state.route) return;
    if (error.status === 401) signInPage("Your session ended; sign in again.");
    else show(h("h1", {}, page[1]), failure(error));
  }
}

function start() {
  const { role, tenant, login } = state.session;
  const who = role === "admin" ? "provider" : role === "login" ? `${login} (${tenant})` : tenant;
  document.getElementById("who").replaceChildren(
    h("span", {}, `Signed in as ${who} `),
    h("button", { type: "button", onclick: signOut }, "Sign out"));
  route();
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", async () => {
  try {
    state.session = await api("GET", "/console/session");
    start();
  } catch {
    signInPage();
  }
});
