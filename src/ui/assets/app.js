// Local times with relative ages, "select all", and confirmations that say how many.
(function () {
  "use strict";
  function age(ms) {
    var s = Math.round(ms / 1000), future = s < 0;
    s = Math.abs(s);
    var text = s < 60 ? s + " s" : s < 3600 ? Math.round(s / 60) + " min" : s < 86400 ? Math.round(s / 3600) + " h" : Math.round(s / 86400) + " d";
    return future ? "in " + text : text + " ago";
  }
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var when = new Date(el.getAttribute("datetime"));
    if (isNaN(when)) return;
    el.title = when.toISOString();
    el.textContent = when.toLocaleString() + " (" + age(Date.now() - when.getTime()) + ")";
  });
  // The overview's charts: the same fragment again every few seconds, without a reload.
  var charts = document.getElementById("charts");
  if (charts && charts.dataset.src) {
    var every = Number(charts.dataset.refreshMs) || 5000;
    setInterval(function () {
      fetch(charts.dataset.src, { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) { if (html !== null) charts.innerHTML = html; })
        .catch(function () {});
    }, every);
  }
  var all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", function () {
      document.querySelectorAll('#dead-letters input[name="id"]').forEach(function (box) { box.checked = all.checked; });
    });
  }
  var bulk = document.getElementById("bulk");
  if (bulk) {
    bulk.addEventListener("submit", function (event) {
      var action = event.submitter ? event.submitter.value : "redrive";
      var byFilter = document.getElementById("scope-filter").checked;
      var count = byFilter ? Number(bulk.dataset.total) : bulk.querySelectorAll('input[name="id"]:checked').length;
      if (count === 0) { event.preventDefault(); alert("Select at least one dead letter."); return; }
      if (!confirm((action === "discard" ? "Discard " : "Redrive ") + count + " dead letter" + (count === 1 ? "" : "s") + "?")) event.preventDefault();
    });
  }
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) { if (!confirm(form.dataset.confirm)) event.preventDefault(); });
  });
})();
