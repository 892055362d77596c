// The agent panel's queue filter: a supervisor picks one of the Organization's queues and sees
// only its agents; the choice is kept in this browser (localStorage) across reloads.
(function () {
  "use strict";

  var KEY = "callboard.agents.queue";

  function saved() {
    try { return localStorage.getItem(KEY) || ""; } catch (e) { return ""; }
  }
  function save(value) {
    try {
      if (value) { localStorage.setItem(KEY, value); } else { localStorage.removeItem(KEY); }
    } catch (e) { /* storage refused (private mode): the choice lasts until the page goes */ }
  }

  // The queues arrive with each panel (its <datalist>); the <select> itself stays put, so a
  // panel arriving while the list is open does not close it. Options are built as text.
  function syncOptions(select) {
    var list = document.getElementById("agent-queue-options");
    if (!list) { return; }
    var wanted = [["", "All queues"]];
    list.querySelectorAll("option").forEach(function (o) { wanted.push([o.value, o.textContent]); });
    var same = select.options.length === wanted.length && wanted.every(function (w, i) {
      return select.options[i].value === w[0] && select.options[i].textContent === w[1];
    });
    if (!same) {
      select.replaceChildren.apply(select, wanted.map(function (w) { return new Option(w[1], w[0]); }));
    }
  }

  function apply() {
    var select = document.getElementById("agent-queue-filter");
    if (!select) { return; }
    syncOptions(select);
    var choice = saved();
    var offered = Array.prototype.some.call(select.options, function (o) { return o.value === choice; });
    // A queue not (or not yet) offered: show every agent, and keep the choice for later.
    if (!offered) { choice = ""; }
    if (select.value !== choice) { select.value = choice; }
    document.querySelectorAll("#agents [data-agent]").forEach(function (row) {
      var queues = (row.dataset.queues || "").split(" ");
      row.hidden = choice !== "" && queues.indexOf(choice) === -1;
    });
  }

  document.addEventListener("change", function (evt) {
    if (evt.target.id === "agent-queue-filter") {
      save(evt.target.value);
      apply();
    }
  });
  document.addEventListener("DOMContentLoaded", apply);
  document.addEventListener("htmx:wsAfterMessage", apply);
})();
