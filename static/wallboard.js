// The wallboard's own behaviour, beside callboard.js (timers, freshness, reconnecting):
// colours from the wallboard's thresholds, a chime when a queue turns red, the longest wait
// ticking, a clock, "revoked", and a reload when the server was upgraded or the wallboard
// changed. Everything it keeps is per queue, so a page that runs for weeks stays its size.
(function () {
  "use strict";

  var REVOKED = 4001;   // dashboard/consumers.py: the token no longer works
  var CHANGED = 4002;   // the wallboard's settings changed: load them
  var body = document.body;
  var limits = {
    waitAmber: Number(body.dataset.waitAmber),
    waitRed: Number(body.dataset.waitRed),
    slAmber: Number(body.dataset.serviceLevelAmber),
    slRed: Number(body.dataset.serviceLevelRed)
  };
  var levels = {};      // queue -> its level at the last tick, to chime on a turn to red
  var audio = null;
  var stopped = false;
  var reloading = false;

  function fmt(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var h = Math.floor(seconds / 3600), m = Math.floor(seconds % 3600 / 60), s = seconds % 60;
    var mm = (h ? String(m).padStart(2, "0") : String(m)) + ":" + String(s).padStart(2, "0");
    return h ? h + ":" + mm : mm;
  }

  // "1:02:03", "2:05" or "75" (seconds) as seconds; NaN for anything else ("–").
  function seconds(text) {
    var found = /^\s*(\d+)(?::(\d+))?(?::(\d+))?/.exec(text || "");
    if (!found) { return NaN; }
    return found.slice(1).filter(function (p) { return p !== undefined; })
      .reduce(function (total, part) { return total * 60 + Number(part); }, 0);
  }

  function metric(tile, name) {
    return tile.querySelector('[data-metric="' + name + '"]');
  }

  // The longest wait now: from its timestamp when the panel gives one, else from the figure
  // as it arrived, growing while calls wait (the panel is sent again when that changes).
  function longestWait(tile, now) {
    var el = metric(tile, "longest_wait");
    if (!el) { return NaN; }
    if (el.dataset.since) {
      var since = (now - Date.parse(el.dataset.since)) / 1000;
      el.textContent = fmt(since);
      return since;
    }
    if (el.dataset.arrived === undefined) {
      el.dataset.base = String(seconds(el.textContent));
      el.dataset.arrived = String(now);
    }
    var base = Number(el.dataset.base);
    var waiting = metric(tile, "waiting");
    if (isNaN(base) || !waiting || !(Number(waiting.textContent) > 0)) { return base; }
    var value = base + (now - Number(el.dataset.arrived)) / 1000;
    el.textContent = fmt(value);
    return value;
  }

  function level(value, amber, red, under) {
    if (isNaN(value)) { return "none"; }
    if (under) { return value < red ? "red" : value < amber ? "amber" : "ok"; }
    return value >= red ? "red" : value >= amber ? "amber" : "ok";
  }

  var RANK = { none: 0, ok: 1, amber: 2, red: 3 };

  function paint(tile, now) {
    var wait = level(longestWait(tile, now), limits.waitAmber, limits.waitRed, false);
    var slEl = metric(tile, "service_level");
    var sl = level(slEl ? parseFloat(slEl.textContent) : NaN, limits.slAmber, limits.slRed, true);
    var worst = RANK[wait] >= RANK[sl] ? wait : sl;
    var waitEl = metric(tile, "longest_wait");
    if (waitEl) { waitEl.dataset.level = wait; }
    if (slEl) { slEl.dataset.level = sl; }
    tile.dataset.level = worst;
    var queue = tile.dataset.queue;
    if (worst === "red" && levels[queue] !== undefined && levels[queue] !== "red") { chime(); }
    levels[queue] = worst;
  }

  // Two short tones from Web Audio: no sound file, one context for the page's life.
  function chime() {
    if (body.dataset.chime !== "on") { return; }
    body.dataset.chimes = String(Number(body.dataset.chimes || 0) + 1);
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) { return; }
    try {
      audio = audio || new Context();
      if (audio.state === "suspended") { audio.resume(); }
      [880, 660].forEach(function (frequency, i) {
        var start = audio.currentTime + i * 0.25;
        var tone = audio.createOscillator(), gain = audio.createGain();
        tone.frequency.value = frequency;
        gain.gain.setValueAtTime(0.0001, start);
        gain.gain.exponentialRampToValueAtTime(0.3, start + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.6);
        tone.connect(gain).connect(audio.destination);
        tone.start(start);
        tone.stop(start + 0.65);
      });
    } catch (err) {
      // A browser that will not play without a click: the colours still say it.
    }
  }

  function tick() {
    if (stopped) { return; }
    var now = Date.now();
    document.querySelectorAll("#tiles > [data-queue]").forEach(function (tile) { paint(tile, now); });
    var clock = document.getElementById("clock");
    if (clock) {
      clock.textContent = new Date(now).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    }
  }
  setInterval(tick, 1000);
  document.addEventListener("DOMContentLoaded", tick);

  // Reload after a pause, spread out so a room of screens does not come back at once.
  function reload() {
    if (reloading) { return; }
    reloading = true;
    setTimeout(function () { window.location.reload(); }, 500 + Math.random() * 2500);
  }

  document.addEventListener("htmx:wsAfterMessage", function () {
    // The first message after every connect names the server's version: a page served by
    // another version is out of date.
    var version = document.getElementById("wall-version");
    if (version && version.dataset.version && version.dataset.version !== body.dataset.version) {
      reload();
    }
    tick();
  });

  document.addEventListener("htmx:wsClose", function (evt) {
    var code = evt.detail.event.code;
    if (code === REVOKED) {
      stopped = true;
      body.classList.add("is-revoked");
      document.getElementById("revoked").hidden = false;
      var connection = document.getElementById("connection");
      if (connection) { connection.dataset.state = "revoked"; connection.textContent = "revoked"; }
    } else if (code === CHANGED) {
      reload();
    }
  });

  // A queue's panel whose id is not its tile's: it replaces the tile of the same queue.
  document.addEventListener("htmx:oobErrorNoTarget", function (evt) {
    var el = evt.detail.content;
    var tiles = document.getElementById("tiles");
    if (!el || !el.dataset || !el.dataset.queue || el.dataset.live || !tiles) { return; }
    var selector = ':scope > [data-queue="' + CSS.escape(el.dataset.queue) + '"]';
    var tile = tiles.querySelector(selector);
    if (tile) {
      tile.replaceWith(el);
      htmx.process(el);
      tick();
    }
  });
})();
