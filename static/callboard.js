// Callboard's browser side: timers that tick from timestamps, the freshness line, rows that
// arrive for calls not on screen yet, and a socket that comes back after every kind of close.
(function () {
  "use strict";

  var STALE_AFTER_S = 15;           // no word from the server for this long: say so
  var RECONNECT_CAP_MS = 30000;     // capped, jittered backoff
  var HTMX_RETRIES = [1006, 1011, 1012, 1013];  // closes the ws extension retries by itself

  function backoff(retry) {
    var max = Math.min(RECONNECT_CAP_MS, 500 * Math.pow(2, Math.min(retry, 10)));
    return max / 2 + Math.random() * max / 2;
  }
  if (window.htmx) { htmx.config.wsReconnectDelay = backoff; }

  function fmt(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var h = Math.floor(seconds / 3600), m = Math.floor(seconds % 3600 / 60), s = seconds % 60;
    var mm = (h ? String(m).padStart(2, "0") : String(m)) + ":" + String(s).padStart(2, "0");
    return h ? h + ":" + mm : mm;
  }

  var lastMessageAt = Date.now();

  function tick() {
    var now = Date.now();
    document.querySelectorAll(".timer[data-since]").forEach(function (el) {
      var since = Date.parse(el.dataset.since);
      var until = el.dataset.until ? Date.parse(el.dataset.until) : now;
      el.textContent = fmt((until - since) / 1000);
    });
    var status = document.getElementById("live-status");
    if (status && status.dataset.asOf) {
      // Server time and browser time may differ: age counts from the last word received.
      var age = Math.max((now - Date.parse(status.dataset.asOf)) / 1000, (now - lastMessageAt) / 1000 - 6);
      var ageEl = status.querySelector(".js-age");
      if (ageEl) { ageEl.textContent = Math.round(Math.max(0, age)) + " s"; }
      document.body.classList.toggle("stale", age > STALE_AFTER_S);
      var banner = document.getElementById("stale-banner");
      if (banner) { banner.hidden = age <= STALE_AFTER_S; banner.querySelector("span").textContent = fmt(age); }
    }
    document.querySelectorAll("time[data-local]").forEach(function (el) {
      var d = new Date(el.dataset.local);
      if (!isNaN(d)) { el.textContent = d.toLocaleTimeString(); }
    });
    var body = document.getElementById("calls-body");
    if (body) { document.body.classList.toggle("no-calls", body.children.length === 0); }
    // What else ticks with the timers (the floor's long waits and sorting) listens for this.
    document.dispatchEvent(new CustomEvent("callboard:tick", { detail: { now: now } }));
  }
  window.callboard = { fmt: fmt };

  setInterval(tick, 1000);
  document.addEventListener("DOMContentLoaded", tick);

  function setConnection(state, text) {
    var el = document.getElementById("connection");
    if (el) { el.dataset.state = state; el.textContent = text; }
  }

  var retries = 0;
  document.addEventListener("htmx:wsOpen", function () {
    retries = 0;
    setConnection("open", "live");
  });
  // dashboard/access.py: the session ended (go to the login page), or what this user may
  // see or do changed (say so; a reload shows the page as it now is). Neither reconnects.
  var SIGNED_OUT = 4003, ACCESS_CHANGED = 4004;
  document.addEventListener("htmx:wsClose", function (evt) {
    var code = evt.detail.event.code;
    if (code === SIGNED_OUT) {
      setConnection("ended", "Signed out");
      setTimeout(function () {
        location.assign("/accounts/login/?next=" + encodeURIComponent(location.pathname));
      }, 1500);
      return;
    }
    if (code === ACCESS_CHANGED) {
      setConnection("ended", "Your access changed: ");
      var el = document.getElementById("connection");
      var reload = document.createElement("a");
      reload.href = location.href;
      reload.textContent = "reload";
      if (el) { el.appendChild(reload); }
      return;
    }
    setConnection("closed", "reconnecting…");
    // 4000-4999: the server's own word on why (a wallboard revoked or changed); the page
    // that was told decides (static/wallboard.js).
    var told = code >= 4000 && code < 5000;
    if (HTMX_RETRIES.indexOf(code) === -1 && !told) {
      // daphne's 24 h timeout closes with 1000, a server restart may too: come back anyway.
      var wrapper = evt.detail.socketWrapper;
      setTimeout(function () { wrapper.reconnect(); }, backoff(retries++));
    }
  });
  document.addEventListener("htmx:wsAfterMessage", function () {
    lastMessageAt = Date.now();
    tick();
  });

  // A row for a call not on screen yet arrives as an out-of-band swap without a target:
  // append it, in arrival order. A panel not on screen yet (a queue's figures) names the
  // container it goes in (data-slot): it is placed there in the order of its data-queue.
  document.addEventListener("htmx:oobErrorNoTarget", function (evt) {
    var el = evt.detail.content;
    if (!el || !el.dataset) { return; }
    var body = document.getElementById("calls-body");
    if (body && el.dataset.live === "row") {
      body.appendChild(el);
      htmx.process(el);
      return;
    }
    var slot = el.dataset.slot && document.getElementById(el.dataset.slot);
    if (slot) {
      var key = el.dataset.queue || el.id;
      var after = Array.prototype.find.call(slot.children, function (other) {
        return (other.dataset.queue || other.id) > key;
      });
      slot.insertBefore(el, after || null);
      htmx.process(el);
    }
  });

  // The barge-in dialog: open it when it arrives, close on its button or Escape.
  document.addEventListener("htmx:afterSwap", function (evt) {
    var dialog = evt.detail.target.querySelector && evt.detail.target.querySelector("dialog");
    if (dialog && !dialog.open) { dialog.showModal(); }
  });
  document.addEventListener("click", function (evt) {
    if (evt.target.matches("[data-close-dialog]")) {
      var dialog = evt.target.closest("dialog");
      if (dialog) { dialog.close(); dialog.remove(); }
    }
  });
})();

// Working the floor on the live page: filters, sorting and search over the rows on screen (all
// of the Organization's calls are there), moving between calls from the keyboard, the barge-in
// dialog as a modal, new waiting calls said to screen readers, and long-wait alerts. Choices
// are kept per user in localStorage. Rows are replaced whole by every snapshot and change, so
// everything here is applied again after each message (htmx:wsAfterMessage fires once its
// swaps are done) and after each tick.
(function () {
  "use strict";

  var MODE_KEYS = { l: "listen", w: "whisper", b: "barge" };
  var TAB_STOPS = "a[href], button:not([disabled]), input:not([disabled]):not([type=hidden]), " +
    "select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex='-1'])";
  var NOT_TYPING = ["checkbox", "radio", "button", "submit", "reset", "range", "color", "file", "image"];

  var form = null;          // #call-filters: null on pages without the live calls (wallboard)
  var user = "";
  var view = { queue: "", agent: "", sort: "", q: "" };
  var alerts = { sound: false, notify: false };
  var alerted = {};         // call id -> true once its long wait was alerted
  var seen = null;          // call ids on screen after the last message; null before the first
  var firstAsOf = NaN;      // the server's time of the first snapshot this page got
  var currentId = null;     // the row the keyboard is on
  var currentIndex = 0;     // its place among the shown rows, to land near it when it goes
  var keepFocus = false;    // the keyboard put focus on the current row: keep it there
  var audio = null;

  // ---- storage, per user ----

  function key(name) { return "callboard." + user + "." + name; }
  function load(name, fallback) {
    try {
      var value = JSON.parse(localStorage.getItem(key(name)));
      return value && typeof value === "object" ? value : fallback;
    } catch (e) { return fallback; }
  }
  function save(name, value) {
    try { localStorage.setItem(key(name), JSON.stringify(value)); } catch (e) { /* private mode */ }
  }

  // ---- rows and what they say ----

  function rows() {
    var body = document.getElementById("calls-body");
    return body ? Array.prototype.slice.call(body.querySelectorAll("tr.call")) : [];
  }
  function text(row, selector) {
    var el = row.querySelector(selector);
    return el ? el.textContent.replace(/\s+/g, " ").trim() : "";
  }
  function caller(row) { return text(row, ".caller"); }
  function queueName(row) { return row.dataset.queueLabel || row.dataset.queue || ""; }
  function times(row, now) {
    var arrived = Date.parse(row.dataset.arrived || ""), answered = Date.parse(row.dataset.answered || "");
    return {
      arrived: arrived,
      wait: isNaN(arrived) ? 0 : ((isNaN(answered) ? now : answered) - arrived) / 1000,
      talk: isNaN(answered) ? -1 : (now - answered) / 1000
    };
  }

  // ---- filters, search, sorting ----

  // A query matches a field's text, or, typed as a number (digits, spaces, +, -, dots,
  // brackets), the field's digits: "020 7183" finds "+44 20 7183 8750".
  // A national number's leading 0 is left out of the comparison too ("020" finds "+44 20").
  function found(fields, query) {
    var q = query.trim().toLowerCase();
    if (!q) { return true; }
    var digits = /^[\d\s()+.\-]+$/.test(q) ? q.replace(/\D/g, "") : "";
    var national = digits.replace(/^0+/, "");
    return fields.some(function (field) {
      var f = field.toLowerCase(), fd = f.replace(/\D/g, "");
      if (f.indexOf(q) !== -1) { return true; }
      if (digits.length < 2) { return false; }
      return fd.indexOf(digits) !== -1 || (national.length >= 3 && fd.indexOf(national) !== -1);
    });
  }

  function inQueue(row) { return !view.queue || row.dataset.queue === view.queue; }

  function matches(row) {
    if (!inQueue(row)) { return false; }
    if (view.agent && row.dataset.callAgent !== view.agent) { return false; }
    return found([caller(row), row.dataset.callAgentLabel || "", row.dataset.callAgent || "",
                  queueName(row), row.dataset.queue || ""], view.q);
  }

  function sortKey(row, now) {
    var t = times(row, now);
    if (view.sort === "wait") { return -t.wait; }
    if (view.sort === "talk") { return -t.talk; }
    return t.arrived;
  }

  // Puts the rows in the chosen order, moving nothing when they already are; a focused row
  // that moves gets its focus back.
  function reorder(list, now) {
    var keyed = list.map(function (row, i) { return { row: row, i: i, key: sortKey(row, now) }; });
    keyed.sort(function (a, b) { return (a.key - b.key) || (a.i - b.i); });
    var same = keyed.every(function (k, i) { return k.row === list[i]; });
    if (same || !list.length) { return; }
    var focused = document.activeElement;
    var body = list[0].parentNode;
    keyed.forEach(function (k) { body.appendChild(k.row); });
    if (focused && focused !== document.activeElement && focused.isConnected) {
      focused.focus({ preventScroll: true });
    }
  }

  // Options are the queues and agents the page knows (the agent panel's, the rows'), built as
  // text; a saved choice not known yet stays offered under its number.
  function syncOptions(select, known, chosen) {
    if (chosen && !known.some(function (k) { return k[0] === chosen; })) { known.push([chosen, chosen]); }
    known.sort(function (a, b) { return a[1].localeCompare(b[1]) || a[0].localeCompare(b[0]); });
    var wanted = [["", select.options[0].textContent]].concat(known);
    var same = select.options.length === wanted.length && wanted.every(function (w, i) {
      return select.options[i].value === w[0] && select.options[i].textContent === w[1];
    });
    if (!same) {
      select.replaceChildren.apply(select, wanted.map(function (w) { return new Option(w[1], w[0]); }));
    }
    if (select.value !== chosen) { select.value = chosen; }
  }

  function knownQueues() {
    var byNumber = {};
    document.querySelectorAll("#agent-queue-options option").forEach(function (o) {
      byNumber[o.value] = o.textContent;
    });
    rows().forEach(function (row) { byNumber[row.dataset.queue] = queueName(row); });
    return Object.keys(byNumber).filter(Boolean).map(function (n) { return [n, byNumber[n] || n]; });
  }

  function knownAgents() {
    var byNumber = {};
    document.querySelectorAll("#agents [data-agent]").forEach(function (el) {
      var name = el.querySelector(".name");
      var label = name && name.firstChild ? name.firstChild.textContent.trim() : "";
      byNumber[el.dataset.agent] = label || el.dataset.agent;
    });
    rows().forEach(function (row) {
      if (row.dataset.callAgent) { byNumber[row.dataset.callAgent] = row.dataset.callAgentLabel || row.dataset.callAgent; }
    });
    return Object.keys(byNumber).map(function (n) { return [n, byNumber[n]]; });
  }

  function readView() {
    view = {
      queue: form.elements.queue.value,
      agent: form.elements.agent.value,
      sort: form.elements.sort.value,
      q: form.elements.q.value
    };
    save("filters", view);
  }

  function applyView(now) {
    if (!form) { return; }
    syncOptions(form.elements.queue, knownQueues(), view.queue);
    syncOptions(form.elements.agent, knownAgents(), view.agent);
    var list = rows(), shown = 0;
    list.forEach(function (row) {
      row.hidden = !matches(row);
      if (!row.hidden) { shown += 1; }
      row.tabIndex = -1;
    });
    reorder(list, now);
    var count = document.getElementById("filter-count");
    if (count) { count.textContent = list.length ? shown + " of " + list.length + " calls shown" : ""; }
    var note = document.getElementById("filtered-note");
    if (note) { note.hidden = !(list.length && !shown); }
    keepCurrent();
  }

  // ---- the keyboard's row ----

  function shownRows() { return rows().filter(function (row) { return !row.hidden; }); }

  function setCurrent(row, focus) {
    var before = currentId && document.getElementById(currentId);
    if (before && before !== row) { before.classList.remove("current"); }
    currentId = row ? row.id : null;
    if (!row) { return; }
    row.classList.add("current");
    currentIndex = Math.max(0, shownRows().indexOf(row));
    if (focus) {
      keepFocus = true;
      row.tabIndex = -1;
      row.focus({ preventScroll: true });
      row.scrollIntoView({ block: "nearest" });
    }
  }

  // After a message or a filter change: the current row is a new element (or gone, or hidden).
  function keepCurrent() {
    if (!currentId) { return; }
    var row = document.getElementById(currentId);
    if (!row || row.hidden) {
      var shown = shownRows();
      row = shown[Math.min(currentIndex, shown.length - 1)] || null;
    }
    var lost = !document.activeElement || document.activeElement === document.body;
    setCurrent(row, false);
    if (row && keepFocus && lost && !document.querySelector("dialog[open]")) {
      row.focus({ preventScroll: true });
    }
  }

  function move(step) {
    var shown = shownRows();
    if (!shown.length) { return; }
    var at = shown.indexOf(currentId ? document.getElementById(currentId) : null);
    var next = at === -1 ? shown[step > 0 ? 0 : shown.length - 1]
                         : shown[Math.max(0, Math.min(shown.length - 1, at + step))];
    setCurrent(next, true);
  }

  function openCurrent() {
    var row = currentId && document.getElementById(currentId);
    var button = row && row.querySelector(".barge-btn");
    if (button && document.body.classList.contains("can-barge")) { button.click(); }
  }

  function typing(el) {
    if (!el || !el.tagName) { return false; }
    if (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT") { return true; }
    return el.tagName === "INPUT" && NOT_TYPING.indexOf(el.type) === -1;
  }

  function onKey(evt) {
    if (!form || evt.defaultPrevented || evt.ctrlKey || evt.metaKey || evt.altKey || evt.isComposing) { return; }
    if (typing(evt.target)) { return; }
    var dialog = document.querySelector("dialog[open]");
    if (dialog) { pickMode(dialog, evt); return; }
    var k = evt.key.length === 1 ? evt.key.toLowerCase() : evt.key;
    if (k === "ArrowDown" || k === "j") { move(1); evt.preventDefault(); }
    else if (k === "ArrowUp" || k === "k") { move(-1); evt.preventDefault(); }
    else if (k === "/") { form.elements.q.focus(); evt.preventDefault(); }
    else if (k === "Enter" && currentId) {
      // On a button or link, Enter is theirs; on the row (or nowhere), it opens the call.
      var on = document.activeElement;
      if (!on || on === document.body || (on.id === currentId)) { openCurrent(); evt.preventDefault(); }
    }
  }

  // ---- the barge-in dialog as a modal ----

  // The controls Tab reaches, in order: of a group of radios, its checked one (or its first).
  function tabStops(dialog) {
    var groups = {};
    return Array.prototype.filter.call(dialog.querySelectorAll(TAB_STOPS), function (el) {
      if (el.getClientRects().length === 0) { return false; }
      if (el.type !== "radio" || !el.name) { return true; }
      var group = dialog.querySelectorAll("input[type=radio][name='" + el.name + "']");
      var checked = Array.prototype.find.call(group, function (r) { return r.checked; });
      if (groups[el.name]) { return false; }
      if (checked ? el === checked : el === group[0]) { groups[el.name] = true; return true; }
      return false;
    });
  }

  function pickMode(dialog, evt) {
    var mode = MODE_KEYS[evt.key.toLowerCase()];
    var radio = mode && dialog.querySelector("input[name=mode][value=" + mode + "]");
    if (!radio || radio.disabled) { return; }
    evt.preventDefault();
    radio.checked = true;
    radio.focus();
    radio.dispatchEvent(new Event("change", { bubbles: true }));
  }

  // Tab and Shift+Tab go round the dialog's controls rather than out of it.
  function trapTab(evt) {
    var dialog = document.querySelector("dialog[open]");
    if (evt.key !== "Tab" || !dialog) { return; }
    var stops = tabStops(dialog);
    if (!stops.length) { evt.preventDefault(); return; }
    var first = stops[0], last = stops[stops.length - 1], at = document.activeElement;
    var inside = dialog.contains(at);
    if (evt.shiftKey && (at === first || !inside)) { last.focus(); evt.preventDefault(); }
    else if (!evt.shiftKey && (at === last || !inside)) { first.focus(); evt.preventDefault(); }
  }

  function focusInside(dialog) {
    var first = tabStops(dialog)[0];
    if (first) { first.focus(); }
  }

  // Focus goes back to the call's row (or, the call gone, to the row that took its place).
  function returnFocus(dialog) {
    var row = document.getElementById("call-" + dialog.dataset.callId);
    if (row && !row.hidden) { setCurrent(row, true); return; }
    keepFocus = true;
    keepCurrent();
    if (currentId) { setCurrent(document.getElementById(currentId), true); }
  }

  // ---- saying new waiting calls ----

  function say(message) {
    var region = document.getElementById("announcer");
    if (!region) { return; }
    // Emptied first, so the same words twice are said twice.
    region.textContent = "";
    setTimeout(function () { region.textContent = message; }, 100);
  }

  // A waiting call this screen had not shown, in the queue filtered on (all when none). Calls
  // that arrived before the page's first snapshot are not news, even when a large snapshot
  // comes in several messages; VoipNow gives arrival times in whole seconds, so "before"
  // means a second before.
  function announceNew() {
    var list = rows();
    if (seen === null) {
      var status = document.getElementById("live-status");
      firstAsOf = Date.parse(status && status.dataset.asOf || "");
    }
    var fresh = seen === null ? [] : list.filter(function (row) {
      var arrived = Date.parse(row.dataset.arrived || "");
      return !seen[row.id] && row.classList.contains("state-waiting") && inQueue(row) &&
        !(arrived < firstAsOf - 1000);
    });
    seen = {};
    list.forEach(function (row) { seen[row.id] = true; });
    if (fresh.length === 1) {
      say("New call waiting in " + queueName(fresh[0]) + ": " + caller(fresh[0]));
    } else if (fresh.length > 1) {
      say(fresh.length + " new calls waiting");
    }
  }

  // ---- long waits ----

  function audioContext() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) { return null; }
    if (!audio) { audio = new Context(); }
    if (audio.state === "suspended") { audio.resume(); }
    return audio;
  }

  // Two short tones, made here: no sound file to serve.
  function beep() {
    var ctx = audioContext();
    if (!ctx) { return; }
    [0, 0.25].forEach(function (offset) {
      var t = ctx.currentTime + offset, osc = ctx.createOscillator(), gain = ctx.createGain();
      osc.type = "sine";
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.0001, t);
      gain.gain.exponentialRampToValueAtTime(0.3, t + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.2);
      osc.connect(gain);
      gain.connect(ctx.destination);
      osc.start(t);
      osc.stop(t + 0.22);
    });
  }

  function notify(row, waited) {
    if (!("Notification" in window) || Notification.permission !== "granted") { return; }
    var id = row.id;
    var shown = new Notification("Long wait in " + queueName(row), {
      body: caller(row) + " has waited " + window.callboard.fmt(waited),
      tag: "callboard-long-wait-" + id
    });
    shown.onclick = function () {
      window.focus();
      var again = document.getElementById(id);
      if (again) { setCurrent(again, true); }
      shown.close();
    };
  }

  function flag(row, on) {
    var cell = row.querySelector("td.wait");
    var el = cell && cell.querySelector(".long-wait-flag");
    if (on && cell && !el) {
      el = document.createElement("strong");
      el.className = "long-wait-flag";
      el.textContent = "long wait";
      cell.appendChild(el);
    } else if (!on && el) {
      el.remove();
    }
  }

  // A waiting call past its queue's threshold (data-long-wait, seconds) is flagged; once per
  // call, the supervisor's choice of a sound and a desktop notification.
  function longWaits(now) {
    var fresh = false;
    rows().forEach(function (row) {
      var limit = Number(row.dataset.longWait), t = times(row, now);
      var long = limit > 0 && !row.dataset.answered && !isNaN(t.arrived) && t.wait >= limit;
      row.classList.toggle("long-wait", long);
      flag(row, long);
      if (long && !alerted[row.id] && inQueue(row)) {
        alerted[row.id] = true;
        fresh = true;
        if (alerts.sound) { beep(); }
        if (alerts.notify) { notify(row, t.wait); }
      }
    });
    if (fresh) {
      var kept = {};
      rows().forEach(function (row) { if (alerted[row.id]) { kept[row.id] = true; } });
      alerted = kept;
      save("alerted", alerted);
    }
  }

  function note(message) {
    var el = document.getElementById("alert-note");
    if (el) { el.textContent = message; }
  }

  function setNotify(box) {
    alerts.notify = false;
    save("alerts", alerts);
    if (!box.checked) { return; }
    if (!("Notification" in window)) {
      box.checked = false;
      note("This browser cannot show desktop notifications.");
      return;
    }
    // Asked here, on the click that turns it on: browsers refuse to ask without one.
    Promise.resolve(Notification.permission === "default" ? Notification.requestPermission()
                                                          : Notification.permission)
      .then(function (answer) {
        box.checked = answer === "granted";
        alerts.notify = box.checked;
        save("alerts", alerts);
        note(box.checked ? "" : "The browser does not allow notifications from this page.");
      });
  }

  // ---- wiring ----

  function onChange(evt) {
    var el = evt.target;
    if (el.name === "sound") {
      alerts.sound = el.checked;
      save("alerts", alerts);
      if (el.checked) { beep(); }  // what it will sound like; this click also unlocks audio
    } else if (el.name === "notify") {
      setNotify(el);
    } else {
      readView();
      applyView(Date.now());
    }
  }

  function start() {
    form = document.getElementById("call-filters");
    var live = document.getElementById("live");
    if (!form || !live) { form = null; return; }
    user = live.dataset.user || "";
    var saved = load("filters", {});
    Object.keys(view).forEach(function (name) { view[name] = typeof saved[name] === "string" ? saved[name] : ""; });
    alerts = load("alerts", alerts);
    alerted = load("alerted", {});
    form.elements.sort.value = view.sort;
    form.elements.q.value = view.q;
    form.elements.sound.checked = !!alerts.sound;
    var granted = "Notification" in window && Notification.permission === "granted";
    alerts.notify = !!alerts.notify && granted;
    form.elements.notify.checked = alerts.notify;

    form.addEventListener("submit", function (evt) { evt.preventDefault(); });
    form.addEventListener("change", onChange);
    form.addEventListener("input", function (evt) { if (evt.target.name === "q") { readView(); applyView(Date.now()); } });
    form.querySelector("[data-clear]").addEventListener("click", function () {
      ["queue", "agent", "sort", "q"].forEach(function (name) { form.elements[name].value = ""; });
      readView();
      applyView(Date.now());
    });
    applyView(Date.now());
  }

  document.addEventListener("DOMContentLoaded", start);
  document.addEventListener("htmx:wsAfterMessage", function () {
    if (!form) { return; }
    applyView(Date.now());
    announceNew();
    longWaits(Date.now());
  });
  document.addEventListener("callboard:tick", function (evt) {
    if (!form) { return; }
    longWaits(evt.detail.now);
    if (view.sort) { reorder(rows(), evt.detail.now); }
  });
  document.addEventListener("keydown", trapTab);
  document.addEventListener("keydown", onKey);
  // A pointer anywhere means the keyboard's focus is no longer wanted on the row; a row
  // clicked becomes the current one. Audio needs a gesture to start: any will do.
  document.addEventListener("pointerdown", function (evt) {
    keepFocus = false;
    var row = form && evt.target.closest && evt.target.closest("#calls-body tr.call");
    if (row) { setCurrent(row, false); }
    if (form && alerts.sound) { audioContext(); }
  });
  document.addEventListener("keydown", function () {
    if (form && alerts.sound) { audioContext(); }
  });
  document.addEventListener("focusin", function (evt) {
    var row = form && evt.target.closest && evt.target.closest("#calls-body tr.call");
    if (row && row.id !== currentId) { setCurrent(row, false); }
    if (!row) { keepFocus = false; }
  });

  document.addEventListener("htmx:afterSwap", function (evt) {
    var dialog = evt.detail.target.querySelector && evt.detail.target.querySelector("dialog[open]");
    if (dialog) { focusInside(dialog); }
  });
  // The submit button is disabled while its request runs, which drops focus out of the
  // dialog: once the answer is in, it goes back to the button (or the first control).
  document.addEventListener("htmx:afterRequest", function () {
    var dialog = document.querySelector("dialog[open]");
    if (!dialog || dialog.contains(document.activeElement)) { return; }
    var submit = dialog.querySelector("button[type=submit]:not([disabled])");
    if (submit) { submit.focus(); } else { focusInside(dialog); }
  });
  // Escape (the browser's own cancel) and Close both end here; Close removes the dialog first,
  // so its close event reaches no listener: that click is handled too.
  document.addEventListener("close", function (evt) {
    if (evt.target.id === "barge-dialog") { returnFocus(evt.target); evt.target.remove(); }
  }, true);
  document.addEventListener("click", function (evt) {
    var button = evt.target.closest && evt.target.closest("[data-close-dialog]");
    var dialog = button && button.closest("dialog");
    if (dialog && !dialog.isConnected) { returnFocus(dialog); }
  });
})();

// ---- Cancel and leave: the viewer's own leg ---------------------------------------------
// A call's row is rendered once for every screen of the organization, so it carries a Cancel
// or Leave button for each supervisor on the call, hidden. This shows the viewer's own: the
// one whose data-supervisor is the username the page was rendered for (base.html). The
// server checks that the leg is theirs all the same.
(function () {
  "use strict";

  function showOwn() {
    var who = document.querySelector("[data-username]");
    var me = who ? who.dataset.username : "";
    document.querySelectorAll("button.leave-btn[data-supervisor]").forEach(function (btn) {
      btn.hidden = !me || btn.dataset.supervisor !== me;
    });
  }

  document.addEventListener("DOMContentLoaded", showOwn);
  // Rows arrive over the socket (swapped, or appended by the handler above) and by htmx.
  document.addEventListener("htmx:wsAfterMessage", showOwn);
  document.addEventListener("htmx:load", showOwn);
})();
