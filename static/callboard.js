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
  }

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
  document.addEventListener("htmx:wsClose", function (evt) {
    setConnection("closed", "reconnecting…");
    var code = evt.detail.event.code;
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
