// The inspector page (SPEC 2.7): polls POST /__mock/ui/poll and shows what it answers.
// Every string shown came from a caller (emails, headers, bodies, reasons): it goes into the
// page as text (textContent), never as markup; an email's HTML only inside a sandboxed iframe.
"use strict";

const POLL_MS = 1000;
const AGAIN_MS = 50; // when an answer says more is waiting
const KEEP = { journal: 500, sharings: 500, outbox: 200 };
const ADMIN = "/__mock";
const THROTTLE_EVERY = 3; // polls: the throttle's part is a scan of every bucket held

const view = {
  journal: {
    since: 0, pending: [], rows: new Map(), selected: null, detail: null, askedDetail: null,
    keep: KEEP.journal, older: null, // "load older" asks for the entries before `older`
  },
  sharings: { since: 0, rows: new Map() },
  outbox: { since: 0, pending: [], rows: new Map(), opened: new Set(), nodes: new Map() },
  generation: 0, // bumped by a reset or a filter change: answers to older polls are ignored
  epoch: null, // the store's: another one (a restart, an emptied Redis) empties the view
  polls: 0,
};

const $ = (id) => document.getElementById(id);

// Bidi controls a caller sent (U+202E...) would reverse the text around them, the emulator's own
// words included: they are shown as escapes, like X-Pisano-Mock-Reason shows them.
const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

function visible(text) {
  return String(text).replace(BIDI, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = visible(text);
  if (className) node.className = className;
  return node;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const td = document.createElement("td");
    if (cell instanceof Node) td.append(cell);
    else td.textContent = cell === null || cell === undefined ? "–" : visible(cell);
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

function filtering(wanted) {
  return wanted.status !== "" || wanted.code !== null || wanted.email !== "" || wanted.token !== "";
}

function pollBody() {
  // A cursor at 0 asks for the tail: the newest items first, not the whole history. A filter
  // reads the whole journal (it is bounded): the entry looked for may be an old one.
  const j = view.journal;
  const wanted = filters();
  j.askedDetail = wantedDetail();
  const tail = j.since === 0 && !filtering(wanted);
  j.askedTail = tail;
  return {
    journal: { since: j.since, tail, refresh: j.pending, detail: j.askedDetail, older: j.older, ...wanted },
    sharings: { since: view.sharings.since, tail: view.sharings.since === 0 },
    outbox: { since: view.outbox.since, tail: view.outbox.since === 0, refresh: view.outbox.pending },
    throttle: view.polls % THROTTLE_EVERY === 0,
  };
}

function newStore(data) {
  // Another store than the one the view shows (the emulator restarted, Redis came back empty):
  // its ids start again, so every row and cursor held is forgotten. True when the answer is stale.
  const changed = view.epoch !== null && data.epoch !== view.epoch;
  view.epoch = data.epoch;
  if (changed) {
    restart();
    clearView();
    say("The emulator's store is new (a restart, or an emptied Redis): the view starts again.");
  }
  return changed;
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
    if (newStore(data)) {
      delay = 0;
    } else if (generation === view.generation) {
      view.polls += 1;
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
  for (const state of data.outbox.states) {
    const held = view.outbox.rows.get(state.id);
    if (held) Object.assign(held, state); // a re-check: the delivery state only
  }
  view.outbox.pending = data.outbox.pending;
  renderJournal();
  renderJournalNote(data.journal);
  renderDetail();
  renderSharings();
  renderOutbox();
  if (data.throttle) renderThrottle(data.throttle, data.clock.now);
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
  if (answer.older) {
    for (const entry of answer.older.entries) j.rows.set(entry.id, entry);
    j.skippedTo = answer.older.skipped;
    j.keep += answer.older.entries.length; // kept while the page lives: the user asked for them
    j.older = null;
  }
  forget(j.rows, answer.first, j.keep);
  if (j.askedTail && answer.skipped > 0) j.skippedTo = answer.skipped; // what the tail left out
  if (j.selected !== null && (answer.first === null || j.selected < answer.first)) {
    j.gone = j.selected; // dropped, or a reset elsewhere: the detail says so
    j.detail = null;
  }
}

function renderJournalNote(answer) {
  // What the list does not show: entries older than the first load, entries the bounds dropped.
  const j = view.journal;
  const notes = [];
  const first = answer.first === null ? null : answer.first;
  const older = j.skippedTo !== undefined && first !== null && j.skippedTo >= first;
  if (older) {
    notes.push("older entries #" + first + "–#" + j.skippedTo + " not shown (the page starts at the newest)");
  }
  $("journal-older").hidden = !older;
  if (answer.dropped > 0) notes.push(answer.dropped + " entries dropped by the journal's bounds");
  $("journal-note").textContent = notes.join("; ");
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
  view.journal.gone = null;
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
    const dropped = view.journal.gone === view.journal.selected;
    $("detail-id").textContent =
      "#" + view.journal.selected +
      (dropped ? " (dropped: no longer held, by the journal's bounds or a reset)" : " (no longer held)");
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
  $("detail-answer-body").textContent = answer.body === null ? "(not kept)" : visible(answer.body);
  $("detail-headers").replaceChildren(
    ...Object.entries(entry.headers || {}).map(([name, value]) => row([name, value])),
  );
  $("detail-body").textContent = visible(pretty(entry.body));
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

function messageHead(m) {
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
  return head;
}

function messageContent(m) {
  // The email is its own document under its own policy (it may fetch nothing): framed by URL.
  if (m.content === null) return el("pre", "(not rendered)", "message-content");
  const frame = document.createElement("iframe");
  frame.setAttribute("sandbox", ""); // no scripts, no same origin, no forms, no popups
  frame.setAttribute("referrerpolicy", "no-referrer");
  frame.className = "message-content";
  frame.title = "email to " + m.to;
  frame.src = ADMIN + "/ui/outbox/" + m.id + (m.content === "html" ? ".html" : ".txt");
  return frame;
}

function updateMessage(node, m) {
  // In place: the head is redrawn, the open email's frame stays where it is (moving or
  // re-inserting an iframe reloads it: a flicker and a lost scroll at each poll).
  const key = m.status + ":" + m.attempts + ":" + m.last_error + ":" + view.outbox.opened.has(m.id);
  if (node.dataset.key !== key) node.firstChild.replaceWith(messageHead(m));
  node.dataset.key = key;
  node.className = "message-item status-" + m.status;
  const content = node.querySelector(":scope > .message-content");
  if (view.outbox.opened.has(m.id) && !content) node.append(messageContent(m));
  if (!view.outbox.opened.has(m.id) && content) content.remove();
}

function renderOutbox() {
  const items = [...view.outbox.rows.values()].sort((a, b) => b.id - a.id);
  const box = $("outbox-items");
  const nodes = view.outbox.nodes;
  for (const [id, node] of nodes) {
    if (!view.outbox.rows.has(id)) {
      node.remove();
      nodes.delete(id);
    }
  }
  // Newest first: a new message goes above those shown; none shown ever moves.
  let next = box.firstElementChild;
  for (const m of items) {
    let node = nodes.get(m.id);
    if (!node) {
      node = el("article", null, "message-item");
      node.append(el("div"));
      nodes.set(m.id, node);
      box.insertBefore(node, next);
    }
    updateMessage(node, m);
    next = node.nextElementSibling;
  }
  $("outbox-empty").hidden = items.length > 0;
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
  // The keys counted most first; key_id tells apart two whose masked names are alike.
  $("throttle-state").textContent = throttle.enabled ? "" : "(off)";
  const nodes = byBucket(throttle.counters).map((tiers) => {
    const box = el("div", null, "bucket");
    const title = el("h3", tiers[0].key);
    title.append(el("small", " key " + tiers[0].key_id));
    box.append(title, ...tiers.map((tier) => tierLine(tier, now)));
    return box;
  });
  if (nodes.length === 0) nodes.push(el("p", "No request counted in a current window.", "empty"));
  if (throttle.more > 0) nodes.push(el("p", throttle.more + " more keys not shown (fewer requests)", "empty"));
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
  let answer;
  try {
    answer = await fetch(ADMIN + path, options);
  } catch (error) {
    say(method + " " + ADMIN + path + ": the emulator did not answer (" + error.message + ")", true);
    return null;
  }
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
  view.journal.detail = null;
  view.journal.skippedTo = undefined;
  view.journal.keep = KEEP.journal;
  view.journal.older = null;
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

const ISO_TIME = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?))?(Z|[+-]\d{2}:?\d{2})?$/i;

function clockTarget(text) {
  // Unix seconds, or an ISO time; without a zone it is UTC, as the page shows the clock.
  const value = text.trim();
  if (/^-?\d+(\.\d+)?$/.test(value)) return Number(value);
  const parts = ISO_TIME.exec(value);
  if (!parts) return null;
  const millis = Date.parse(parts[1] + "T" + (parts[2] || "00:00") + (parts[3] || "Z"));
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
  const text = $("clock-advance").value.trim();
  if (text === "" || !isFinite(Number(text))) {
    say("advance: give a number of seconds", true);
    return;
  }
  const seconds = Number(text);
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
  // An empty `times` is once, as the field shows: "always" only if asked for in the API.
  const times = $("fault-times").value.trim();
  body.times = times === "" ? 1 : isFinite(Number(times)) ? Number(times) : times;
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
    view.journal.skippedTo = undefined;
    view.journal.keep = KEEP.journal;
    view.journal.older = null;
    restart();
  }, 250);
}

function wire() {
  $("reset").addEventListener("click", reset);
  $("clock-set-go").addEventListener("click", setClock);
  $("clock-advance-go").addEventListener("click", advanceClock);
  $("fault-add").addEventListener("click", addFault);
  $("fault-clear").addEventListener("click", clearFaults);
  $("journal-older").addEventListener("click", () => {
    if (view.journal.skippedTo !== undefined) view.journal.older = view.journal.skippedTo + 1;
  });
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
    const id = Number(event.target.dataset && event.target.dataset.message);
    if (!id) return;
    if (view.outbox.opened.has(id)) view.outbox.opened.delete(id);
    else view.outbox.opened.add(id);
    renderOutbox();
  });
  poll();
}

document.addEventListener("DOMContentLoaded", wire);
