// Lynkr session viewer. No dependencies, no build step, no network beyond this gateway.
// Every value from the log is untrusted: it only ever reaches the page as text nodes
// (textContent / createTextNode), never as HTML.
"use strict";

const main = () => document.getElementById("main");
const KEY = "lynkr-viewer-key";
let lastSeq = 0;          // the newest timeline row shown (session view)
let refusalsShown = new Set();  // log positions of the rate-limit rows shown (session view)
let current = null;       // {view, arg, params}

// -- DOM helpers ----------------------------------------------------------------------
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = String(value);
    else node.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
const when = (t) => (t ? new Date(t * 1000).toISOString().replace("T", " ").slice(0, 19) : "-");
const ms = (v) => (v === null || v === undefined ? "" : `${Math.round(v)} ms`);

// -- a small, safe markdown subset: fences, headings, lists, paragraphs, inline code,
// bold, http(s) links. Builds DOM nodes; never parses HTML.
function inline(text, parent) {
  const parts = text.split(/(`[^`\n]+`|\*\*[^*\n]+\*\*|\[[^\]\n]+\]\([^)\s]+\))/);
  for (const part of parts) {
    if (!part) continue;
    if (part.startsWith("`") && part.endsWith("`") && part.length > 1) {
      parent.append(el("code", { text: part.slice(1, -1) }));
    } else if (part.startsWith("**") && part.endsWith("**") && part.length > 4) {
      parent.append(el("strong", { text: part.slice(2, -2) }));
    } else if (/^\[[^\]]+\]\([^)]+\)$/.test(part)) {
      const label = part.slice(1, part.indexOf("]"));
      const url = part.slice(part.indexOf("](") + 2, -1);
      let safe = null;
      try { const u = new URL(url); if (u.protocol === "http:" || u.protocol === "https:") safe = u.href; } catch (_) { /* not a URL */ }
      parent.append(safe ? el("a", { href: safe, rel: "noopener noreferrer nofollow", text: label }) : document.createTextNode(part));
    } else {
      parent.append(document.createTextNode(part));
    }
  }
}

function markdown(text) {
  const out = document.createDocumentFragment();
  const lines = String(text).split("\n");
  let para = null, list = null;
  const close = () => { para = null; list = null; };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.startsWith("```")) {
      close();
      const body = [];
      for (i++; i < lines.length && !lines[i].startsWith("```"); i++) body.push(lines[i]);
      out.append(el("pre", {}, el("code", { text: body.join("\n") })));
      continue;
    }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    const item = /^\s*(?:[-*]|(\d+)\.)\s+(.*)$/.exec(line);
    if (!line.trim()) { close(); continue; }
    if (heading) { close(); const p = el("p", { class: "md-h" }); const s = el("strong"); inline(heading[2], s); p.append(s); out.append(p); continue; }
    if (item) {
      const tag = item[1] ? "ol" : "ul";
      if (!list || list.tagName.toLowerCase() !== tag) { list = el(tag); out.append(list); para = null; }
      const li = el("li"); inline(item[2], li); list.append(li);
      continue;
    }
    list = null;
    if (!para) { para = el("p"); out.append(para); } else para.append(el("br"));
    inline(line, para);
  }
  return out;
}

// -- fetching ---------------------------------------------------------------------------
function headers() {
  const key = sessionStorage.getItem(KEY);
  return key ? { "x-api-key": key } : {};
}

async function api(path) {
  const response = await fetch(path, { headers: headers(), cache: "no-store" });
  if (response.status === 401) { showLogin(); throw new Error("authentication required"); }
  const body = await response.json();
  if (!response.ok) throw new Error((body.error && body.error.message) || response.statusText);
  return body;
}

function showLogin() {
  const form = el("form", { class: "filters", "aria-label": "Sign in" },
    el("label", {}, "API key", el("input", { type: "password", name: "key", autocomplete: "off", required: true })),
    el("button", { type: "submit" }, "Sign in"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY, new FormData(form).get("key"));
    route(); follow();
  });
  main().replaceChildren(el("h2", { text: "Sign in" }),
    el("p", { text: "This gateway has team auth on: enter your API key (kept in this tab only)." }), form);
}

function failed(error) {
  if (error.message !== "authentication required") main().append(el("p", { class: "error", role: "alert", text: error.message }));
}

// -- views --------------------------------------------------------------------------------
function filterForm(fields, params, target) {
  const form = el("form", { class: "filters", role: "search" });
  for (const [name, label, type] of fields) {
    form.append(el("label", {}, label, el("input", { name, type: type || "search", value: params.get(name) || "" })));
  }
  form.append(el("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const query = new URLSearchParams();
    for (const [name, value] of new FormData(form)) if (value) query.set(name, value);
    location.hash = `${target}?${query}`;
  });
  return form;
}

function table(columns, rows, cell) {
  const head = el("tr", {}, ...columns.map(([, label, num]) => el("th", { scope: "col", class: num ? "num" : null, text: label })));
  const body = el("tbody", {}, ...rows.map((row) => el("tr", {}, ...columns.map(([key, label, num]) => {
    const td = el("td", { "data-label": label, class: num ? "num" : null });
    const content = cell ? cell(key, row) : null;
    td.append(content instanceof Node ? content : document.createTextNode(content ?? (row[key] ?? "")));
    return td;
  }))));
  return el("div", { class: "scroll" }, el("table", { class: "stack" }, el("thead", {}, head), body));
}

async function viewSessions(params) {
  const body = await api(`/ui/api/sessions?${params}`);
  const cols = [["session_id", "Session"], ["user", "User"], ["key_id", "Key"], ["model", "Model"],
    ["turns", "Turns", 1], ["failures", "Failures", 1], ["last_at", "Last activity"]];
  main().replaceChildren(el("h2", { text: "Sessions" }),
    filterForm([["q", "Search"], ["user", "User"], ["key", "Key"], ["model", "Model"],
      ["since", "Since", "date"], ["until", "Until", "date"]], params, "#/"),
    body.data.length ? table(cols, body.data, (key, row) => {
      if (key === "session_id") return el("a", { href: `#/session/${encodeURIComponent(row.session_id)}`, class: "session-link", text: row.session_id });
      if (key === "last_at") return when(row.last_at);
      return null;
    }) : el("p", { class: "muted", text: "No sessions match." }));
}

function timelineItem(row) {
  const classes = ["ev", row.kind, row.status ? `status-${row.status}` : ""].join(" ");
  const head = el("div", { class: "ev-head" }, el("span", { class: "time", text: when(row.at) }),
    el("span", { class: "badge", text: row.kind }), el("strong", { text: row.title }),
    row.latency_ms !== null ? el("span", { class: "lat", text: ms(row.latency_ms) }) : null);
  return el("li", { class: classes, "data-seq": row.seq ?? null, "data-kind": row.kind },
    head, row.detail ? el("p", { class: "detail", text: row.detail }) : null);
}

function block(b) {
  switch (b.type) {
    case "text": return el("div", { class: "md" }, markdown(b.text));
    case "thinking": return el("details", { class: "thinking" }, el("summary", { text: "Thinking" }), el("pre", { text: b.text }));
    case "tool_use": return el("details", { class: "tool-use" }, el("summary", { text: `Tool call: ${b.name}` }), el("pre", { text: b.text }));
    case "tool_result": return el("details", { class: "tool-result" }, el("summary", { text: `Tool result${b.error ? " (error)" : ""}` }), el("pre", { text: b.text }));
    default: return el("details", {}, el("summary", { text: `Block: ${b.name || b.type}` }), el("pre", { text: b.text }));
  }
}

function message(m) {
  return el("article", { class: `msg role-${m.role}` },
    el("header", { text: `${m.role} · turn ${m.turn}` }), ...m.blocks.map(block));
}

async function viewSession(id, params, live) {
  const after = live ? lastSeq : 0;
  const body = await api(`/ui/api/sessions/${encodeURIComponent(id)}?after=${after}`);
  if (live && document.getElementById("timeline")) {
    const list = document.getElementById("timeline");
    const fresh = body.timeline.filter((row) => row.seq > lastSeq)
      .concat(body.rate_limits.filter((row) => !refusalsShown.has(row.position)));
    for (const row of fresh.sort((a, b) => a.at - b.at)) {
      const item = timelineItem(row);
      item.classList.add("fresh");
      list.append(item);
    }
    document.getElementById("conversation").replaceChildren(...body.conversation.map(message));
  } else {
    const s = body.session;
    main().replaceChildren(
      el("p", {}, el("a", { href: "#/", text: "← All sessions" })),
      el("h2", { text: `Session ${s.session_id}` }),
      el("p", { id: "summary", class: "muted" }),
      el("div", { class: "cols" },
        el("section", { "aria-labelledby": "tl-h" }, el("h3", { id: "tl-h", text: "Timeline" }),
          el("ol", { id: "timeline", class: "timeline" },
            ...body.timeline.concat(body.rate_limits).sort((a, b) => a.at - b.at).map(timelineItem))),
        el("section", { "aria-labelledby": "tr-h" }, el("h3", { id: "tr-h", text: "Transcript" }),
          el("div", { id: "conversation" }, ...body.conversation.map(message)))));
  }
  const s = body.session;
  document.getElementById("summary").textContent = `user ${s.user} · key ${s.key_id || "-"} · model ${s.model || "-"} · ${s.turns} turns · ${s.failures} failures · last activity ${when(s.last_at)}`;
  for (const row of body.timeline) lastSeq = Math.max(lastSeq, row.seq);
  refusalsShown = new Set(body.rate_limits.map((row) => row.position));
}

function barChart(title, rows, label, value) {
  const NS = "http://www.w3.org/2000/svg";
  const bar = 18, gap = 6, left = 160, width = 560;
  const max = Math.max(1, ...rows.map((r) => r[value] || 0));
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("viewBox", `0 0 ${left + width + 80} ${Math.max(1, rows.length) * (bar + gap) + 4}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${title}: ${rows.map((r) => `${r[label]} ${r[value]}`).join(", ")}`);
  rows.forEach((r, i) => {
    const y = i * (bar + gap) + 2;
    const name = document.createElementNS(NS, "text");
    name.setAttribute("x", "0"); name.setAttribute("y", String(y + 13)); name.textContent = String(r[label]).slice(0, 24);
    const rect = document.createElementNS(NS, "rect");
    rect.setAttribute("x", String(left)); rect.setAttribute("y", String(y)); rect.setAttribute("height", String(bar));
    rect.setAttribute("width", String(Math.max(1, (width * (r[value] || 0)) / max)));
    const tip = document.createElementNS(NS, "title"); tip.textContent = `${r[label]}: ${r[value]}`; rect.append(tip);
    const num = document.createElementNS(NS, "text");
    num.setAttribute("x", String(left + 6 + (width * (r[value] || 0)) / max)); num.setAttribute("y", String(y + 13)); num.textContent = String(r[value]);
    svg.append(name, rect, num);
  });
  return el("figure", {}, el("figcaption", {}, el("h3", { text: title })), svg);
}

async function viewUsage(params) {
  const body = await api(`/ui/api/usage?${params}`);
  const tokens = (r) => ({ ...r, tokens: (r.input_tokens || 0) + (r.output_tokens || 0) });
  main().replaceChildren(el("h2", { text: "Usage" }),
    filterForm([["since", "Since", "date"], ["until", "Until", "date"]], params, "#/usage"),
    barChart("Requests per day", body.day, "day", "requests"),
    barChart("Tokens (in + out) per model", body.model.map(tokens), "model", "tokens"),
    barChart("Requests per key", body.key, "key", "requests"),
    el("h3", { text: "Per day" }),
    table([["day", "Day"], ["requests", "Requests", 1], ["input_tokens", "Input tokens", 1],
      ["output_tokens", "Output tokens", 1], ["cache_read_input_tokens", "Cache reads", 1],
      ["tool_calls", "Tool calls", 1], ["errors", "Errors", 1]], body.day));
}

async function viewAudit(params) {
  const body = await api(`/ui/api/audit?${params}`);
  main().replaceChildren(el("h2", { text: "Policy audit" }),
    filterForm([["session", "Session"], ["tool", "Tool"], ["decision", "Decision (allow/deny)"],
      ["since", "Since", "date"], ["until", "Until", "date"]], params, "#/audit"),
    body.data.length ? table([["recorded_at", "When"], ["session_id", "Session"], ["tool", "Tool"],
      ["decision", "Decision"], ["rule", "Rule"], ["reason", "Reason"], ["caller", "Caller"]], body.data,
    (key, row) => {
      if (key === "recorded_at") return when(row.recorded_at);
      if (key === "session_id") return el("a", { href: `#/session/${encodeURIComponent(row.session_id)}`, text: row.session_id });
      return null;
    }) : el("p", { class: "muted", text: "No policy decisions match." }));
}

async function viewServers() {
  const body = await api("/ui/api/servers");
  const connectors = body.tunnel.flatMap((view) => view.connectors.map((c) => ({
    ...c, user: view.user, servers: c.servers.join(", "), tools: c.tools.length,
    last_seen: `${c.last_seen_s} s ago` })));
  const waiting = body.tunnel.filter((view) => view.waiting_calls || view.away_tools.length);
  main().replaceChildren(el("h2", { text: "MCP servers" }),
    !body.mcp_enabled ? el("p", { class: "muted", text: "MCP is not enabled on this gateway." })
      : body.mcp.length ? table([["server", "Server"], ["state", "State"], ["transport", "Transport"],
        ["restarts", "Restarts", 1], ["tools", "Tools", 1], ["last_reason", "Last reason"]], body.mcp)
        : el("p", { class: "muted", text: "No MCP servers attached." }),
    el("h2", { text: "Tunnel connectors" }),
    !body.tunnel_enabled ? el("p", { class: "muted", text: "The callback tunnel is not enabled on this gateway." })
      : connectors.length ? table([["user", "User"], ["connector_id", "Connector"], ["state", "State"],
        ["transport", "Transport"], ["servers", "Servers"], ["tools", "Tools", 1],
        ["in_flight", "In flight", 1], ["queued", "Queued", 1], ["last_seen", "Last seen"]], connectors)
        : el("p", { class: "muted", text: "No connectors attached (lynkr connect)." }),
    waiting.length ? table([["user", "User"], ["waiting_calls", "Calls waiting for a connector", 1],
      ["away", "Tools of a connector that left"]],
    waiting.map((v) => ({ ...v, away: v.away_tools.join(", ") }))) : null);
}

// -- routing and the live feed ---------------------------------------------------------------
function parse() {
  const [path, query] = (location.hash.slice(1) || "/").split("?");
  const params = new URLSearchParams(query || "");
  const m = /^\/session\/(.+)$/.exec(path);
  if (m) return { view: "session", arg: decodeURIComponent(m[1]), params };
  return { view: ({ "/usage": "usage", "/audit": "audit", "/servers": "servers" })[path] || "sessions", params };
}

async function route(live) {
  const next = parse();
  if (!live) { lastSeq = 0; current = next; }
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.view === (next.view === "session" ? "sessions" : next.view)) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  try {
    if (next.view === "session") await viewSession(next.arg, next.params, live);
    else if (next.view === "usage") await viewUsage(next.params);
    else if (next.view === "audit") await viewAudit(next.params);
    else if (next.view === "servers") await viewServers();
    else await viewSessions(next.params);
    document.body.dataset.ready = "1";
  } catch (error) { failed(error); }
}

let following = null;
async function follow() {
  if (following) following.abort();
  const control = following = new AbortController();
  const status = document.getElementById("live");
  let after = 0;
  while (!control.signal.aborted) {
    try {
      const response = await fetch(`/ui/events?after=${after}`, { headers: headers(), signal: control.signal });
      if (!response.ok) { status.textContent = "live updates unavailable"; return; }
      status.textContent = "live";
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const frame = buffer.slice(0, end); buffer = buffer.slice(end + 2);
          const data = frame.split("\n").find((l) => l.startsWith("data: "));
          if (!frame.includes("event: position") || !data) continue;
          const first = after === 0;
          after = JSON.parse(data.slice(6)).position;
          if (!first) await route(true);
        }
      }
    } catch (error) {
      if (control.signal.aborted) return;
    }
    status.textContent = "reconnecting…";
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

window.addEventListener("hashchange", () => { route(); main().focus(); });
document.addEventListener("DOMContentLoaded", () => { route(); follow(); });
