// The inspector page (SPEC 2.7): polls POST /__mock/ui/poll and shows what it answers.
// Every string shown came from a caller (emails, headers, bodies, reasons): it goes into the
// page as text (textContent), never as markup; an email's HTML only inside a sandboxed iframe.
"use strict";

const POLL_MS = 1000;
const AGAIN_MS = 50; // when an answer says more is waiting
const KEEP = { journal: 500, sharings: 500, outbox: 200 };
const ADMIN = "/__mock";

const view = {
  journal: { since: 0, pending: [], rows: new Map(), selected: null, detail: null, askedDetail: null },
  sharings: { since: 0, rows: new Map() },
  outbox: { since: 0, pending: [], rows: new Map(), opened: new Set() },
  generation: 0, // bumped by a reset or a filter change: answers to older polls are ignored
};

const $ = (id) => document.getElementById(id);

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const td = document.createElement("td");
    if (cell instanceof Node) td.append(cell);
    else td.textContent = cell === null || cell === undefined ? "–" : String(cell);
    tr.append(td);
  }
  return tr;
}

function when(seconds) {
  if (typeof seconds !== "number") return "–";
  const date = new Date(seconds * 1000);
  return isNaN(date.getTime()) ? String(seconds) : date.toISOString().replace(".000Z", "Z");
}

function timeOfDay(seconds) {
  // A narrow column: the time of day, the whole instant as the tooltip.
  const whole = when(seconds);
  const span = el("span", whole.includes("T") ? whole.split("T")[1] : whole);
  span.title = whole;
  return span;
}

function say(text, isError) {
  const message = $("message");
  message.textContent = text;
  message.className = isError ? "message error" : "message";
}

// -- polling ------------------------------------------------------------------------------------

function filters() {
  const code = $("filter-code").value.trim();
  return {
    status: $("filter-status").value.trim().toLowerCase(),
    code: code === "" ? null : Number(code),
    email: $("filter-email").value.trim(),
    token: $("filter-token").value,
  };
}

function wantedDetail() {
  // The open entry is asked for until it arrives complete: a body may weigh megabytes.
  const j = view.journal;
  const held = j.detail && j.detail.id === j.selected && !j.detail.open;
  return held ? null : j.selected;
}

function pollBody() {
  const j = view.journal;
  j.askedDetail = wantedDetail();
  return {
    journal: { since: j.since, refresh: j.pending, detail: j.askedDetail, ...filters() },
    sharings: { since: view.sharings.since },
    outbox: { since: view.outbox.since, refresh: view.outbox.pending },
  };
}

async function poll() {
  const generation = view.generation;
  let delay = POLL_MS;
  try {
    const answer = await fetch(document.body.dataset.poll, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(pollBody()),
    });
    const data = await answer.json();
    if (!answer.ok) throw new Error(data.reason || answer.status);
    if (generation === view.generation) {
      apply(data);
      $("live").textContent = "live";
      $("live").className = "live ok";
      const more = data.journal.more || data.sharings.more || data.outbox.more;
      delay = more ? AGAIN_MS : POLL_MS;
    } else {
      delay = 0;
    }
  } catch (error) {
    $("live").textContent = "not connected: " + error.message;
    $("live").className = "live error";
  }
  setTimeout(poll, delay);
}

function restart() {
  view.generation += 1;
}

function apply(data) {
  applyJournal(data.journal);
  applyCursor(view.sharings, data.sharings, KEEP.sharings);
  applyCursor(view.outbox, data.outbox, KEEP.outbox);
  view.outbox.pending = data.outbox.pending;
  renderJournal();
  renderDetail();
  renderSharings();
  renderOutbox();
  renderThrottle(data.throttle, data.clock.now);
  renderFaults(data.faults);
  renderClock(data.clock);
}

function forget(rows, first, keep) {
  // Rows below the oldest id held are gone (dropped by the bounds, or a reset elsewhere).
  for (const id of [...rows.keys()]) {
    if (first === null || id < first) rows.delete(id);
  }
  const ids = [...rows.keys()].sort((a, b) => b - a);
  for (const id of ids.slice(keep)) rows.delete(id);
}

function applyCursor(part, answer, keep) {
  for (const item of answer.items) part.rows.set(item.id, item);
  part.since = answer.next;
  forget(part.rows, answer.first, keep);
}

function applyJournal(answer) {
  const j = view.journal;
  for (const id of answer.gone) j.rows.delete(id);
  for (const entry of answer.entries) j.rows.set(entry.id, entry);
  j.since = answer.next;
  j.pending = answer.pending;
  if (j.askedDetail !== null) j.detail = answer.detail;
  forget(j.rows, answer.first, KEEP.journal);
  if (j.selected !== null && (answer.first === null || j.selected < answer.first)) {
    j.selected = null; // dropped, or a reset elsewhere
    j.detail = null;
  }
}

// -- journal ------------------------------------------------------------------------------------

function statusClass(status) {
  if (status === null) return "status-none";
  return "status-" + String(status)[0] + "xx";
}

function renderJournal() {
  const rows = [...view.journal.rows.values()].sort((a, b) => b.id - a.id);
  const body = $("journal-rows");
  body.replaceChildren(
    ...rows.map((entry) => {
      const tr = row([
        entry.id,
        when(entry.time),
        entry.method,
        entry.path,
        entry.open ? "…" : entry.status,
        entry.code,
        entry.reason || (entry.warnings ? entry.warnings + " warning(s)" : ""),
      ]);
      tr.className = statusClass(entry.status);
      if (entry.id === view.journal.selected) tr.classList.add("selected");
      tr.dataset.id = entry.id;
      tr.tabIndex = 0;
      return tr;
    }),
  );
  $("journal-empty").hidden = rows.length > 0;
}

function openEntry(id) {
  view.journal.selected = id;
  view.journal.detail = null;
  $("detail").hidden = false;
  $("detail-id").textContent = "#" + id + " (loading…)";
  renderJournal();
  restart(); // a poll under way did not ask for this entry: its answer is not waited for
}

function definitions(list, pairs) {
  list.replaceChildren();
  for (const [name, value] of pairs) {
    list.append(el("dt", name));
    list.append(el("dd", value === null || value === undefined ? "–" : value));
  }
}

function pretty(value) {
  if (value === null || value === undefined) return "(none)";
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

function renderDetail() {
  const entry = view.journal.detail;
  if (view.journal.selected === null) {
    $("detail").hidden = true;
    return;
  }
  if (!entry || entry.id !== view.journal.selected) {
    $("detail-id").textContent = "#" + view.journal.selected + " (no longer held)";
    return;
  }
  $("detail-id").textContent = "#" + entry.id;
  definitions($("detail-summary"), [
    ["request", entry.method + " " + entry.path],
    ["time", when(entry.time)],
    ["reason", entry.reason],
    ["warnings", (entry.warnings || []).join("\n") || null],
    ["fault", entry.fault ? JSON.stringify(entry.fault) : null],
    ["throttle", entry.throttle ? JSON.stringify(entry.throttle) : null],
    ["trigger", entry.trigger],
  ]);
  const answer = entry.answer;
  definitions($("detail-answer"), [
    ["status", answer.status],
    ["code", entry.code],
    ["Content-Type", answer.content_type],
    ["note", answer.note],
  ]);
  $("detail-answer-body").textContent = answer.body === null ? "(not kept)" : answer.body;
  $("detail-headers").replaceChildren(
    ...Object.entries(entry.headers || {}).map(([name, value]) => row([name, value])),
  );
  $("detail-body").textContent = pretty(entry.body);
}

// -- sharings, outbox ---------------------------------------------------------------------------

function shortened(text, length) {
  // Long ids stay readable in a narrow column; the whole value is the tooltip.
  const span = el("span", text.length > length ? text.slice(0, length) + "…" : text);
  span.title = text;
  return span;
}

function linkTo(url) {
  if (typeof url !== "string" || !/^https?:\/\//.test(url)) return url;
  const a = el("a", "survey ↗");
  a.title = url;
  a.href = url; // a survey link: http(s) only, checked above
  a.rel = "noreferrer noopener";
  a.target = "_blank";
  return a;
}

function renderSharings() {
  const rows = [...view.sharings.rows.values()].sort((a, b) => b.id - a.id);
  $("sharing-rows").replaceChildren(
    ...rows.map((s) =>
      row([
        s.id,
        s.channel,
        s.email ?? s.phone_number ?? "–",
        shortened(String(s.campaign_id), 13),
        timeOfDay(s.accepted_at),
        s.request_id,
        linkTo(s.link),
      ]),
    ),
  );
}

function renderMessage(m) {
  const item = el("article", null, "message-item status-" + m.status);
  const head = el("div", null, "message-head");
  head.append(
    el("strong", "#" + m.id + " " + m.channel),
    el("span", "to " + m.to),
    el("span", m.subject === null ? "(no subject)" : "subject: " + m.subject),
    el("span", m.status + " (" + m.attempts + " attempt(s))", "delivery"),
  );
  if (m.last_error) head.append(el("span", "last error: " + m.last_error, "error"));
  const toggle = el("button", view.outbox.opened.has(m.id) ? "Hide" : "Show");
  toggle.type = "button";
  toggle.dataset.message = m.id;
  head.append(toggle);
  item.append(head);
  if (view.outbox.opened.has(m.id)) item.append(messageContent(m));
  return item;
}

function messageContent(m) {
  if (m.html) {
    const frame = document.createElement("iframe");
    frame.setAttribute("sandbox", ""); // no scripts, no same origin, no forms, no popups
    frame.setAttribute("referrerpolicy", "no-referrer");
    frame.title = "email to " + m.to;
    frame.srcdoc = m.html;
    return frame;
  }
  return el("pre", m.text === null ? "(not rendered)" : m.text);
}

function renderOutbox() {
  const items = [...view.outbox.rows.values()].sort((a, b) => b.id - a.id);
  const box = $("outbox-items");
  // An open email keeps its iframe between polls unless its message changed.
  const before = new Map([...box.children].map((node) => [node.dataset.key, node]));
  box.replaceChildren(
    ...items.map((m) => {
      const key = m.id + ":" + m.status + ":" + m.attempts + ":" + view.outbox.opened.has(m.id);
      const kept = before.get(key);
      if (kept) return kept;
      const node = renderMessage(m);
      node.dataset.key = key;
      return node;
    }),
  );
  if (items.length === 0) box.replaceChildren(el("p", "No message yet.", "empty"));
}

// -- throttle, faults, clock --------------------------------------------------------------------

function tierLine(tier, now) {
  // One tier of a bucket: its count in the current window as a gauge, and when the window ends.
  const gauge = document.createElement("meter");
  gauge.min = 0;
  gauge.max = tier.limit;
  gauge.high = tier.limit * 0.75;
  gauge.value = Math.min(tier.count, tier.limit);
  gauge.title = tier.count + " / " + tier.limit;
  const left = Math.max(0, Math.round(tier.window_end - now));
  const line = el("div", null, "tier");
  line.append(
    el("span", tier.tier, "tier-name"),
    gauge,
    el("span", tier.count + " / " + tier.limit),
    el("span", "window ends " + when(tier.window_end) + " (in " + left + " s)"),
  );
  return line;
}

function byBucket(counters) {
  const buckets = new Map();
  for (const counter of counters) {
    if (!buckets.has(counter.key_id)) buckets.set(counter.key_id, []);
    buckets.get(counter.key_id).push(counter);
  }
  return [...buckets.values()];
}

function renderThrottle(throttle, now) {
  $("throttle-state").textContent = throttle.enabled ? "" : "(off)";
  const nodes = byBucket(throttle.counters).map((tiers) => {
    const box = el("div", null, "bucket");
    box.append(el("h3", tiers[0].key), ...tiers.map((tier) => tierLine(tier, now)));
    return box;
  });
  if (nodes.length === 0) nodes.push(el("p", "No request counted in a current window.", "empty"));
  $("throttle-buckets").replaceChildren(...nodes);
}

function renderFaults(faults) {
  $("fault-rows").replaceChildren(
    ...faults.map((f) => {
      const does = ["error", "status", "retry_after", "delay_ms", "drop"]
        .filter((key) => f[key] !== undefined)
        .map((key) => key + " " + f[key])
        .join(", ");
      const left = f.remaining === null ? "always" : f.remaining;
      return row([f.id, JSON.stringify(f.match || {}), does, left]);
    }),
  );
}

function renderClock(clock) {
  $("clock-now").textContent = when(clock.now);
  $("clock-now").title = String(clock.now);
  $("clock-rate").textContent = clock.rate === 0 ? "(frozen)" : "(×" + clock.rate + ")";
}

// -- controls: the admin API's own routes, same origin, JSON ------------------------------------

async function admin(method, path, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const answer = await fetch(ADMIN + path, options);
  const data = await answer.json().catch(() => ({}));
  if (!answer.ok) {
    say(method + " " + ADMIN + path + ": " + (data.reason || answer.status), true);
    return null;
  }
  return data;
}

function clearView() {
  view.journal.rows.clear();
  view.journal.since = 0;
  view.journal.pending = [];
  view.journal.selected = null;
  view.sharings.rows.clear();
  view.sharings.since = 0;
  view.outbox.rows.clear();
  view.outbox.since = 0;
  view.outbox.pending = [];
  renderJournal();
  renderDetail();
  renderSharings();
  renderOutbox();
}

async function reset() {
  if ((await admin("POST", "/reset")) === null) return;
  restart();
  clearView();
  say("Reset: journal, sharings, outbox, throttle counters and faults emptied; clock real.");
}

function clockTarget(text) {
  const value = text.trim();
  if (/^-?\d+(\.\d+)?$/.test(value)) return Number(value);
  const millis = Date.parse(value);
  return isNaN(millis) ? null : millis / 1000;
}

async function setClock() {
  const target = clockTarget($("clock-set").value);
  if (target === null) {
    say("set: give an ISO time (2026-01-01T00:00:00Z) or Unix seconds", true);
    return;
  }
  if (await admin("POST", "/clock", { set: target })) say("Clock set (frozen there).");
}

async function advanceClock() {
  const seconds = Number($("clock-advance").value);
  if (await admin("POST", "/clock", { advance: seconds })) {
    say("Clock advanced " + seconds + " s (frozen there).");
  }
}

function faultBody() {
  const kind = $("fault-kind").value;
  const raw = $("fault-value").value.trim();
  const match = {};
  if ($("fault-path").value.trim()) match.path = $("fault-path").value.trim();
  if ($("fault-token").value) match.token = $("fault-token").value;
  if ($("fault-campaign").value.trim()) match.campaign_id = $("fault-campaign").value.trim();
  const body = { match, [kind]: kind === "drop" ? raw : Number(raw) };
  const times = $("fault-times").value.trim();
  if (times) body.times = Number(times);
  return body;
}

async function addFault() {
  const added = await admin("POST", "/faults", faultBody());
  if (added) say("Fault #" + added.id + " added.");
}

async function clearFaults() {
  if (await admin("DELETE", "/faults")) say("Every fault deleted.");
}

let pendingRestart = null;

function restartSoon() {
  // A filter typed, or a row opened: start the journal again from the first entry.
  clearTimeout(pendingRestart);
  pendingRestart = setTimeout(() => {
    view.journal.since = 0;
    view.journal.pending = [];
    view.journal.rows.clear();
    restart();
  }, 250);
}

function wire() {
  $("reset").addEventListener("click", reset);
  $("clock-set-go").addEventListener("click", setClock);
  $("clock-advance-go").addEventListener("click", advanceClock);
  $("fault-add").addEventListener("click", addFault);
  $("fault-clear").addEventListener("click", clearFaults);
  $("detail-close").addEventListener("click", () => {
    view.journal.selected = null;
    renderDetail();
    renderJournal();
  });
  for (const id of ["filter-status", "filter-code", "filter-email", "filter-token"]) {
    $(id).addEventListener("input", restartSoon);
  }
  $("filter-clear").addEventListener("click", () => {
    for (const id of ["filter-status", "filter-code", "filter-email", "filter-token"]) {
      $(id).value = "";
    }
    restartSoon();
  });
  const opened = (event) => {
    const tr = event.target.closest("tr[data-id]");
    if (tr && (event.type === "click" || event.key === "Enter")) openEntry(Number(tr.dataset.id));
  };
  $("journal-rows").addEventListener("click", opened);
  $("journal-rows").addEventListener("keydown", opened);
  $("outbox-items").addEventListener("click", (event) => {
    const id = Number(event.target.dataset.message);
    if (!id) return;
    if (view.outbox.opened.has(id)) view.outbox.opened.delete(id);
    else view.outbox.opened.add(id);
    renderOutbox();
  });
  poll();
}

document.addEventListener("DOMContentLoaded", wire);
