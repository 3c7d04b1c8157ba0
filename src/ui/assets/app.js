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
  // The rule editor: the pattern checked as it is typed (errors with their pointer, schema
  // warnings, a dry run on the bus's recent events). Everything shown is set as text.
  var editor = document.getElementById("rule-editor");
  if (editor && editor.dataset.check) {
    var patternBox = document.getElementById("event-pattern");
    var timer = null, asked = 0;
    var list = function (items, line) {
      var ul = document.createElement("ul");
      items.forEach(function (item) { var li = document.createElement("li"); line(li, item); ul.appendChild(li); });
      return ul;
    };
    var show = function (check) {
      var error = document.getElementById("pattern-error");
      var warnings = document.getElementById("schema-warnings");
      var dry = document.getElementById("dry-run");
      error.textContent = ""; warnings.textContent = ""; dry.textContent = "";
      error.hidden = !check.error;
      if (check.error) {
        var b = document.createElement("b"); b.className = "message"; b.textContent = check.error.message;
        var at = document.createElement("code"); at.className = "pointer"; at.textContent = check.error.pointer;
        error.append(b, " at ", at);
      }
      warnings.hidden = !check.warnings || check.warnings.length === 0;
      if (!warnings.hidden) {
        var title = document.createElement("b"); title.textContent = "Schema warnings";
        warnings.append(title, list(check.warnings, function (li, w) {
          var code = document.createElement("code"); code.textContent = w.pointer;
          li.append(code, " " + w.message);
        }));
      }
      dry.hidden = !check.dry_run;
      if (check.dry_run) {
        var line = document.createElement("b");
        var matched = document.createElement("span"); matched.id = "dry-run-matched"; matched.textContent = check.dry_run.matched;
        var checked = document.createElement("span"); checked.id = "dry-run-checked"; checked.textContent = check.dry_run.checked;
        line.append("Would have matched ", matched, " of the last ", checked, " events.");
        dry.append(line, list(check.dry_run.examples, function (li, x) {
          var a = document.createElement("a"); a.href = "/ui/events?id=" + encodeURIComponent(x.id); a.textContent = x.detail_type;
          li.append(a, " " + x.source + " · " + x.received_at);
        }));
      }
    };
    var run = function () {
      var mine = ++asked;
      fetch(editor.dataset.check, {
        method: "POST", credentials: "same-origin",
        headers: { "content-type": "application/json", "x-csrf-token": editor.dataset.csrf },
        body: JSON.stringify({ event_pattern: patternBox.value })
      }).then(function (response) { return response.ok ? response.json() : null; })
        .then(function (check) { if (check && mine === asked) show(check); })
        .catch(function () {});
    };
    patternBox.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(run, 300); });
  }
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) { if (!confirm(form.dataset.confirm)) event.preventDefault(); });
  });
})();
