/* os-trace HTML report: waterfall, collapse, search, details. No network. */
(function () {
  "use strict";
  var doc = JSON.parse(document.getElementById("trace-data").textContent);
  var spans = doc.spans, n = spans.length, total = Math.max(doc.duration_ms, 1e-6);
  var palette = doc.palette, colour = {};
  doc.services.forEach(function (s, i) { colour[s] = palette[i % palette.length]; });
  function esc(v) {
    return String(v).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }
  function ms(v) {
    return v >= 1000 ? (v / 1000).toFixed(2) + "s" : (v >= 10 ? v.toFixed(1) : v.toFixed(2)) + "ms";
  }
  // subtree end: rows are depth-first, so a subtree is a contiguous range
  var end = new Array(n), stack = [];
  for (var i = 0; i < n; i++) {
    while (stack.length && spans[stack[stack.length - 1]].depth >= spans[i].depth) {
      end[stack.pop()] = i - 1;
    }
    stack.push(i);
  }
  while (stack.length) { end[stack.pop()] = n - 1; }
  var collapsed = new Uint8Array(n);

  function summaryTable(title, rows, withColour) {
    var keys = Object.keys(rows).sort(function (a, b) { return rows[b].self_ms - rows[a].self_ms; });
    var sum = keys.reduce(function (a, k) { return a + rows[k].self_ms; }, 0) || 1;
    var h = "<table><caption>" + esc(title) + "</caption><tr><th></th><th>spans</th>" +
      "<th>self time</th><th>share</th><th>with children</th><th>errors</th></tr>";
    keys.forEach(function (k) {
      var r = rows[k], pct = 100 * r.self_ms / sum;
      h += "<tr><td>" + (withColour ? '<span class="swatch" style="background:' +
        colour[k] + '"></span>' : "") + esc(k) + "</td><td>" + r.spans + "</td><td>" +
        ms(r.self_ms) + "</td><td>" + pct.toFixed(1) + '%<span class="share" style="width:' +
        Math.round(pct * 0.6) + 'px"></span></td><td>' + ms(r.total_ms) + "</td><td>" +
        (r.errors || "") + "</td></tr>";
    });
    return h + "</table>";
  }
  document.getElementById("summary").innerHTML =
    summaryTable("Time per service", doc.summary.by_service, true) +
    summaryTable("Time per kind (rpc, db, driver, http)", doc.summary.by_kind, false);

  var ticks = '<div class="ticks"><div class="label"><b>span</b></div><div class="track">';
  for (var t = 0; t < 5; t++) {
    ticks += '<span class="tick" style="left:' + (t * 20) + '%">' + ms(total * t / 5) + "</span>";
  }
  var html = [ticks + "</div></div>"];
  for (i = 0; i < n; i++) {
    var s = spans[i], left = 100 * s.offset_ms / total, width = 100 * s.duration_ms / total;
    var leaf = end[i] === i, err = s.status.code === "ERROR";
    html.push('<div class="row' + (err ? " error" : "") + '" id="row-' + s.span_id +
      '" data-i="' + i + '"><div class="label" style="padding-left:' + (4 + 14 * s.depth) +
      'px"><span class="toggle' + (leaf ? " leaf" : "") + '" title="collapse/expand">' +
      (leaf ? "" : "\u25BE") + '</span><span class="name">' + esc(s.name) + '</span>' +
      '<span class="svc">' + esc(s.service) + "</span>" + (s.category !== "other" ?
      '<span class="cat">' + esc(s.category) + "</span>" : "") +
      '</div><div class="track"><div class="bar' + (err ? " error" : "") +
      '" style="left:' + left.toFixed(3) + "%;width:" + width.toFixed(3) +
      "%;background:" + colour[s.service] + '"></div><span class="dur" style="' +
      (left + width > 88 ? "right:" + (100.5 - left).toFixed(3) :
       "left:" + (left + width + 0.5).toFixed(3)) + '%">' + ms(s.duration_ms) +
      "</span></div></div>");
  }
  var wf = document.getElementById("waterfall");
  wf.innerHTML = html.join("");
  var rows = wf.querySelectorAll(".row");

  function applyCollapse() {
    var hideUntil = -1;
    for (var i = 0; i < n; i++) {
      var hidden = i <= hideUntil;
      rows[i].classList.toggle("hidden", hidden);
      if (!hidden && collapsed[i]) { hideUntil = Math.max(hideUntil, end[i]); }
    }
  }
  function toggle(i) {
    collapsed[i] = collapsed[i] ? 0 : 1;
    rows[i].querySelector(".toggle").textContent = collapsed[i] ? "\u25B8" : "\u25BE";
    rows[i].classList.toggle("collapsed", !!collapsed[i]);
    applyCollapse();
  }
  function kv(obj) {
    var keys = Object.keys(obj || {});
    if (!keys.length) { return "<p><i>none</i></p>"; }
    return "<table>" + keys.sort().map(function (k) {
      var v = obj[k];
      return "<tr><td>" + esc(k) + "</td><td>" + esc(typeof v === "object" ? JSON.stringify(v) : v) +
        "</td></tr>";
    }).join("") + "</table>";
  }
  var selected = -1, panel = document.getElementById("details");
  function show(i) {
    if (selected >= 0) { rows[selected].classList.remove("selected"); }
    selected = i;
    rows[i].classList.add("selected");
    var s = spans[i], h = '<button class="close" title="close">\u2715</button><h2>' +
      esc(s.name) + "</h2>";
    if (s.status.code === "ERROR") {
      h += '<div class="errbox">ERROR' + (s.status.message ? ": " + esc(s.status.message) : "") +
        "</div>";
    }
    h += kv({"service": s.service, "kind": s.kind, "category": s.category,
             "span id": s.span_id, "parent span id": s.parent_span_id || "(root)",
             "start": "+" + ms(s.offset_ms), "duration": ms(s.duration_ms),
             "self time": ms(s.self_ms), "status": s.status.code});
    h += '<h3>Attributes</h3><div class="attributes">' + kv(s.attributes) + "</div>";
    h += "<h3>Events</h3>" + (s.events.length ? s.events.map(function (e) {
      return "<p><b>" + esc(e.name) + "</b> +" + ms((e.time_unix_nano - doc.start_unix_nano) / 1e6) +
        "</p>" + kv(e.attributes);
    }).join("") : "<p><i>none</i></p>");
    if (s.links.length) {
      h += "<h3>Links</h3>" + s.links.map(function (l) {
        return "<p>" + esc(l.trace_id) + " / " + esc(l.span_id) + "</p>";
      }).join("");
    }
    h += "<h3>Resource</h3>" + kv(doc.resources[s.service]);
    panel.innerHTML = h;
    panel.classList.add("open");
  }
  wf.addEventListener("click", function (ev) {
    var row = ev.target.closest(".row");
    if (!row) { return; }
    var i = +row.getAttribute("data-i");
    if (ev.target.classList.contains("toggle")) { if (end[i] > i) { toggle(i); } return; }
    show(i);
  });
  panel.addEventListener("click", function (ev) {
    if (ev.target.classList.contains("close")) {
      panel.classList.remove("open");
      if (selected >= 0) { rows[selected].classList.remove("selected"); }
      selected = -1;
    }
  });
  var haystack = spans.map(function (s) {
    return (s.name + " " + s.service + " " + s.kind + " " + s.category + " " + s.span_id + " " +
      JSON.stringify(s.attributes) + " " + (s.status.message || "")).toLowerCase();
  });
  var hits = document.getElementById("hits");
  document.getElementById("search").addEventListener("input", function (ev) {
    var q = ev.target.value.trim().toLowerCase(), count = 0;
    for (var i = 0; i < n; i++) {
      var hit = q !== "" && haystack[i].indexOf(q) >= 0;
      if (hit) { count++; }
      rows[i].classList.toggle("hit", hit);
      rows[i].classList.toggle("dim", q !== "" && !hit);
    }
    hits.textContent = q ? count + " of " + n + " spans match" : "";
  });
  document.getElementById("expand-all").addEventListener("click", function () {
    collapsed.fill(0);
    for (var i = 0; i < n; i++) {
      rows[i].classList.remove("collapsed");
      if (end[i] > i) { rows[i].querySelector(".toggle").textContent = "\u25BE"; }
    }
    applyCollapse();
  });
  document.getElementById("collapse-all").addEventListener("click", function () {
    for (var i = 0; i < n; i++) {
      if (end[i] > i && spans[i].depth > 0) {
        collapsed[i] = 1; rows[i].classList.add("collapsed");
        rows[i].querySelector(".toggle").textContent = "\u25B8";
      }
    }
    applyCollapse();
  });
  document.body.setAttribute("data-ready", "1");
})();
