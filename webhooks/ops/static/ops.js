// Bindery's console: "select all" on the failed jobs, and a replay's progress as it goes.
// The pages work without it (the progress page then reloads itself every 2 s).
(function () {
  "use strict";

  function selectAll() {
    var all = document.querySelector("[data-select-all]");
    var button = document.getElementById("replay-selected");
    if (!all || !button) return;
    var boxes = function () { return document.querySelectorAll("input[name=job_id]"); };
    var label = button.getAttribute("data-selected-label");
    var update = function () {
      var n = Array.prototype.filter.call(boxes(), function (b) { return b.checked; }).length;
      button.textContent = n ? label + " (" + n + ")" : label;
      button.disabled = n === 0;
    };
    all.addEventListener("change", function () {
      boxes().forEach(function (b) { b.checked = all.checked; });
      update();
    });
    boxes().forEach(function (b) { b.addEventListener("change", update); });
    update();
  }

  function counts(map) {
    var names = Object.keys(map).sort();
    if (!names.length) return "-";
    return names.map(function (n) { return n + " " + map[n]; }).join(", ");
  }

  function progress() {
    var section = document.querySelector("[data-progress-url]");
    if (!section) return;
    var url = section.getAttribute("data-progress-url");
    var text = function (id, value) { document.getElementById(id).textContent = value; };
    var poll = function () {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(function (batch) {
          var bar = document.getElementById("replay-bar");
          bar.max = batch.total || 1;
          bar.value = batch.done;
          text("replay-state", batch.state);
          text("replay-done", batch.done);
          text("replay-total", batch.total);
          text("replay-results", counts(batch.results));
          text("replay-outcomes", counts(batch.replayed));
          document.getElementById("replay-settled").hidden = !batch.settled;
          if (!batch.settled) setTimeout(poll, 1000);
        })
        .catch(function () {
          text("replay-state", "progress unavailable (signed out?): reload the page");
        });
    };
    poll();
  }

  document.addEventListener("DOMContentLoaded", function () {
    selectAll();
    progress();
  });
})();
