/* embedlab report: draws every section from the JSON data embedded in the page. No dependencies. */
(function () {
  "use strict";

  var DATA = JSON.parse(document.getElementById("embedlab-data").textContent);
  var SVG = "http://www.w3.org/2000/svg";
  var PALETTE = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
    "#bab0ac", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf"
  ];

  // ---------- small helpers ----------
  function el(tag, attrs) {
    var node = document.createElement(tag);
    var key;
    for (key in attrs || {}) {
      if (key === "text") { node.textContent = attrs[key]; } else { node.setAttribute(key, attrs[key]); }
    }
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined) { continue; }
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }
  function svgEl(tag, attrs) {
    var node = document.createElementNS(SVG, tag);
    for (var key in attrs || {}) { node.setAttribute(key, attrs[key]); }
    return node;
  }
  function fmt(value, digits) {
    if (value === null || value === undefined || (typeof value === "number" && !isFinite(value))) { return "n/a"; }
    if (typeof value !== "number") { return String(value); }
    if (digits === undefined) { digits = Math.abs(value) >= 100 ? 0 : 2; }
    return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  }
  function int(value) { return value === null || value === undefined ? "n/a" : value.toLocaleString("en-US"); }
  function colour(index) {
    if (index < 0) { return "#c7cbd3"; }
    if (index < PALETTE.length) { return PALETTE[index]; }
    return "hsl(" + ((index * 137.508) % 360).toFixed(1) + ",55%,52%)";
  }
  function how(text) { return el("p", { "class": "how", text: text }); }
  function table(headers, rows, numeric) {
    var head = el("tr");
    headers.forEach(function (h, i) { head.appendChild(el("th", { "class": numeric && numeric[i] ? "num" : "", text: h })); });
    var body = el("tbody");
    rows.forEach(function (row) {
      var tr = el("tr");
      row.forEach(function (cell, i) {
        var td = el("td", { "class": numeric && numeric[i] ? "num" : "" });
        if (cell instanceof Node) { td.appendChild(cell); } else { td.textContent = cell; }
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    return el("table", {}, el("thead", {}, head), body);
  }
  function card(value, label) {
    return el("div", { "class": "card" }, el("div", { "class": "value", text: value }), el("div", { "class": "label", text: label }));
  }
  function textOf(id) {
    var entry = DATA.texts[String(id)];
    return entry && entry.text ? entry.text : "";
  }

  // ---------- charts (SVG) ----------
  function ticks(lo, hi, log) {
    var out = [];
    if (log) {
      var steps = Math.log10(hi / lo) > 2.5 ? [1] : [1, 2, 5];
      for (var p = Math.floor(Math.log10(lo)); p <= Math.ceil(Math.log10(hi)); p++) {
        steps.forEach(function (m) { var v = m * Math.pow(10, p); if (v >= lo * 0.999 && v <= hi * 1.001) { out.push(v); } });
      }
      return out;
    }
    var span = hi - lo || 1;
    var step = Math.pow(10, Math.floor(Math.log10(span / 5)));
    if (span / step > 10) { step *= 2; }
    if (span / step > 10) { step *= 2.5; }
    for (var t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) { out.push(Math.abs(t) < step * 1e-9 ? 0 : t); }
    return out;
  }
  function tickLabel(v) {
    if (v === 0) { return "0"; }
    var a = Math.abs(v);
    if (a >= 1e4 || a < 1e-3) { return v.toExponential(0); }
    return String(Math.round(v * 1000) / 1000);
  }
  /* series: [{name, color, points: [[x, y, hoverText]], line, marker ("circle"|"square"|"diamond"), size}] */
  function chart(spec) {
    var W = 640, H = 340, M = { l: 58, r: 16, t: 14, b: 44 };
    var xs = [], ys = [];
    spec.series.forEach(function (s) {  // null (NaN in the data) is not a value: leave such points out
      s.points = s.points.filter(function (p) { return p[0] !== null && p[1] !== null; });
      s.points.forEach(function (p) { xs.push(p[0]); ys.push(p[1]); });
    });
    (spec.bars || []).forEach(function (b) { xs.push(b[0], b[1]); ys.push(0, b[2]); });
    var xlo = spec.xmin !== undefined ? spec.xmin : Math.min.apply(null, xs);
    var xhi = spec.xmax !== undefined ? spec.xmax : Math.max.apply(null, xs);
    var ylo = spec.ymin !== undefined ? spec.ymin : Math.min.apply(null, ys);
    var yhi = spec.ymax !== undefined ? spec.ymax : Math.max.apply(null, ys);
    if (spec.xLog) { xlo /= 1.25; xhi *= 1.25; } else if (xlo === xhi) { xlo -= 1; xhi += 1; }
    if (spec.yLog) { ylo /= 1.25; yhi *= 1.25; } else { var pad = (yhi - ylo) * 0.06 || 0.5; if (spec.ymin === undefined) { ylo -= pad; } if (spec.ymax === undefined) { yhi += pad; } }
    function sx(x) { return spec.xLog ? M.l + (Math.log(x) - Math.log(xlo)) / (Math.log(xhi) - Math.log(xlo)) * (W - M.l - M.r) : M.l + (x - xlo) / (xhi - xlo) * (W - M.l - M.r); }
    function sy(y) { return spec.yLog ? H - M.b - (Math.log(y) - Math.log(ylo)) / (Math.log(yhi) - Math.log(ylo)) * (H - M.t - M.b) : H - M.b - (y - ylo) / (yhi - ylo) * (H - M.t - M.b); }
    var svg = svgEl("svg", { viewBox: "0 0 " + W + " " + H, "class": "chart", role: "img", "aria-label": spec.title || "" });
    var grid = svgEl("g", { "class": "grid" }), axis = svgEl("g", { "class": "axis" });
    ticks(ylo, yhi, spec.yLog).forEach(function (t) {
      grid.appendChild(svgEl("line", { x1: M.l, x2: W - M.r, y1: sy(t), y2: sy(t) }));
      var label = svgEl("text", { x: M.l - 6, y: sy(t) + 4, "text-anchor": "end" }); label.textContent = tickLabel(t); axis.appendChild(label);
    });
    ticks(xlo, xhi, spec.xLog).forEach(function (t) {
      grid.appendChild(svgEl("line", { x1: sx(t), x2: sx(t), y1: M.t, y2: H - M.b }));
      var label = svgEl("text", { x: sx(t), y: H - M.b + 15, "text-anchor": "middle" }); label.textContent = tickLabel(t); axis.appendChild(label);
    });
    axis.appendChild(svgEl("line", { x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b }));
    axis.appendChild(svgEl("line", { x1: M.l, x2: M.l, y1: M.t, y2: H - M.b }));
    var xl = svgEl("text", { x: (M.l + W - M.r) / 2, y: H - 8, "text-anchor": "middle" }); xl.textContent = spec.xLabel; axis.appendChild(xl);
    var yl = svgEl("text", { x: 14, y: (M.t + H - M.b) / 2, "text-anchor": "middle", transform: "rotate(-90 14 " + (M.t + H - M.b) / 2 + ")" }); yl.textContent = spec.yLabel; axis.appendChild(yl);
    svg.appendChild(grid); svg.appendChild(axis);
    (spec.bars || []).forEach(function (b) {
      var rect = svgEl("rect", { "class": "bar", x: sx(b[0]) + 0.5, y: sy(b[2]), width: Math.max(1, sx(b[1]) - sx(b[0]) - 1), height: Math.max(0, sy(0) - sy(b[2])) });
      var title = svgEl("title"); title.textContent = b[3]; rect.appendChild(title); svg.appendChild(rect);
    });
    spec.series.forEach(function (s) {
      if (s.line && s.points.length > 1) {
        var d = s.points.map(function (p, i) { return (i ? "L" : "M") + sx(p[0]).toFixed(1) + "," + sy(p[1]).toFixed(1); }).join("");
        svg.appendChild(svgEl("path", { d: d, fill: "none", stroke: s.color, "stroke-width": s.width || 2, "stroke-dasharray": s.dash || "" }));
      }
      if (s.marker === "none") { return; }
      s.points.forEach(function (p) {
        var r = s.size || 3.5, node;
        if (s.marker === "square") { node = svgEl("rect", { x: sx(p[0]) - r, y: sy(p[1]) - r, width: 2 * r, height: 2 * r }); }
        else if (s.marker === "diamond") { node = svgEl("path", { d: "M" + sx(p[0]) + "," + (sy(p[1]) - r * 1.3) + "l" + r * 1.3 + "," + r * 1.3 + "l" + -r * 1.3 + "," + r * 1.3 + "l" + -r * 1.3 + "," + -r * 1.3 + "z" }); }
        else { node = svgEl("circle", { cx: sx(p[0]), cy: sy(p[1]), r: r }); }
        node.setAttribute("fill", s.fill || s.color); node.setAttribute("stroke", s.color); node.setAttribute("stroke-width", 1.2);
        if (p[2]) { var title = svgEl("title"); title.textContent = p[2]; node.appendChild(title); }
        svg.appendChild(node);
      });
    });
    var wrap = el("figure", { "class": "figure", "data-chart": spec.id || "" });
    if (spec.title) { wrap.appendChild(el("h3", { text: spec.title })); }
    wrap.appendChild(svg);
    var named = spec.series.filter(function (s) { return s.name; });
    if (named.length > 1) {
      var legend = el("div", { "class": "legend" });
      named.forEach(function (s) {
        legend.appendChild(el("span", {}, el("span", { "class": "swatch", style: "background:" + (s.fill === "#fff" ? "#fff" : s.color) + ";border:1.5px solid " + s.color }), s.name));
      });
      wrap.appendChild(legend);
    }
    return wrap;
  }

  // ---------- sections ----------
  function subtitle() {
    var g = DATA.geometry;
    document.getElementById("subtitle").textContent = int(DATA.n) + " vectors x " + DATA.dim + " dimensions, " + DATA.metric +
      " metric" + (DATA.label_column ? ", labels from '" + DATA.label_column + "'" : "") + "; computed in " + fmt(DATA.timings.seconds.total, 0) +
      " s by embedlab " + DATA.embedlab + (g.sampled ? " (inspect on a sample of " + int(g.n) + ")" : "");
  }

  function summary() {
    var section = document.getElementById("summary");
    var g = DATA.geometry, c = DATA.clusters, d = g.duplicates;
    var cards = el("div", { "class": "cards" });
    cards.appendChild(card(int(DATA.n), "vectors of " + DATA.dim + " dimensions"));
    var rid = g.intrinsic_dimension.recommended;
    cards.appendChild(card(fmt(rid.value, 1), "intrinsic dimension" + (rid.agree === false ? " (estimators disagree)" : "")));
    cards.appendChild(card(String(c.k), (c.k_selection && !c.k_selection.clear ? "clusters shown, no clear k (" : "clusters (") + c.support.well_supported + " well supported)"));
    cards.appendChild(card(int(d.exact_rows), "exact duplicate rows"));
    cards.appendChild(card(int(d.near_pairs), "near-duplicate pairs (cos >= " + d.near_threshold + ")"));
    cards.appendChild(card(int(g.outliers.count), "outliers"));
    cards.appendChild(card(fmt(g.hubness.skewness, 2), "hubness (k-occurrence skewness)"));
    var plan = DATA.compression;
    if (plan) {
      var hit = plan.points.filter(function (p) { return p.rescore === null && p.recall_at_k >= 0.99; })
        .sort(function (a, b) { return a.bytes_per_vector - b.bytes_per_vector; })[0];
      if (hit) { cards.appendChild(card(hit.bytes_per_vector + " B", "per vector at recall@" + plan.k + " >= 0.99 (" + hit.codec + ")")); }
    }
    section.appendChild(cards);
    section.appendChild(el("h3", { text: "Recommendations" }));
    var list = el("ul", { "class": "advice" });
    DATA.recommendations.forEach(function (line) { list.appendChild(el("li", { text: line })); });
    section.appendChild(list);
    var steps = Object.keys(DATA.timings.seconds).filter(function (k) { return k !== "total"; })
      .map(function (k) { return k + " " + fmt(DATA.timings.seconds[k], 1) + " s"; }).join(", ");
    section.appendChild(how("Time per step: " + steps + "."));
  }

  function geometry() {
    var section = document.getElementById("geometry");
    var g = DATA.geometry, ids = g.intrinsic_dimension;
    section.appendChild(how("inspect on " + (g.sampled ? "a seeded sample of " + int(g.n) + " of " + int(g.n_total) : "all " + int(g.n)) +
      " rows; kNN graph k = " + g.k + " (" + g.knn_graph.method + ", " + g.metric + (g.knn_graph.recall !== null && g.knn_graph.method !== "exact" ? ", recall " + fmt(g.knn_graph.recall, 3) : "") + ")."));
    section.appendChild(el("h3", { text: "Intrinsic dimension" }));
    var names = [["recommended", "Recommended: TwoNN corrected for the sample size"], ["twonn", "TwoNN (Facco et al. 2017)"],
      ["mle", "MLE (Levina & Bickel 2004)"], ["gride", "GRIDE (Denti et al. 2022)"], ["tle", "TLE (Amsaleg et al. 2019)"],
      ["pca90", "PCA, 90% variance"], ["pca95", "PCA, 95% variance"], ["pca99", "PCA, 99% variance"]];
    section.appendChild(table(["estimator", "value", "95% interval", "points"], names.map(function (n) {
      var e = ids[n[0]];
      return [n[1], fmt(e.value, 1), e.ci_low === null ? "n/a" : fmt(e.ci_low, 1) + " - " + fmt(e.ci_high, 1), int(e.n)];
    }), [false, true, true, true]));
    section.appendChild(how(ids.recommended.note));
    section.appendChild(how("Nearest-neighbour estimators average over " + int(ids.n_queries) + " query points (" + int(ids.duplicates_excluded) +
      " duplicate rows excluded), 95% intervals by bootstrap; the recommended estimate's interval also spans the correction for a closed " +
      "and a bounded manifold, and the other estimators where they disagree. PCA counts on " + int(g.spectrum.n) + " sampled rows."));
    var grid = el("div", { "class": "grid2" });
    var ev = g.spectrum.eigenvalues, total = ev.reduce(function (a, b) { return a + b; }, 0);
    var explained = ev.map(function (v, i) { return [i + 1, v / total, "component " + (i + 1) + ": " + fmt(100 * v / total, 2) + "% of the variance"]; })
      .filter(function (p) { return p[1] > 0; });
    var cumulative = g.spectrum.explained_variance.map(function (v, i) { return [i + 1, v, (i + 1) + " components: " + fmt(100 * v, 1) + "%"]; });
    var spectrumFig = chart({ id: "spectrum", title: "Spectrum", xLabel: "principal component", yLabel: "share of variance", xLog: true, yLog: true,
      series: [{ name: "per component", color: "#4e79a7", points: explained, line: true, marker: "none" }] });
    spectrumFig.appendChild(how("Eigenvalues of the covariance of " + int(g.spectrum.n) + " sampled rows (log-log). Effective rank " + fmt(g.spectrum.effective_rank, 1) +
      ", power-law slope " + fmt(g.spectrum.power_law_slope, 2) + "; 95% of the variance in " + fmt(ids.pca95.value, 0) + " components."));
    grid.appendChild(spectrumFig);
    var cumFig = chart({ id: "cumulative", title: "Cumulative explained variance", xLabel: "components", yLabel: "share of variance", ymin: 0, ymax: 1,
      series: [{ name: "", color: "#59a14f", points: cumulative, line: true, marker: "none" }] });
    cumFig.appendChild(how("Same sample; read off how many dimensions PCA must keep."));
    grid.appendChild(cumFig);
    if (g.lid) {
      var h = g.lid.histogram, bars = h.counts.map(function (c, i) { return [h.edges[i], h.edges[i + 1], c, fmt(h.edges[i], 1) + " - " + fmt(h.edges[i + 1], 1) + ": " + int(c) + " points"]; });
      var lidFig = chart({ id: "lid", title: "Local intrinsic dimension", xLabel: "local ID (MLE, k = " + g.lid.k + ")", yLabel: "points", ymin: 0, series: [], bars: bars });
      lidFig.appendChild(how("Levina-Bickel MLE around each of " + int(g.lid.n) + " query points with k = " + g.lid.k + " neighbours; median " +
        fmt(g.lid.median, 1) + " (IQR " + fmt(g.lid.q25, 1) + " - " + fmt(g.lid.q75, 1) + "). " + g.search_risk.note));
      grid.appendChild(lidFig);
    }
    section.appendChild(grid);
    var a = g.anisotropy, hub = g.hubness;
    section.appendChild(el("h3", { text: "Anisotropy and hubness" }));
    section.appendChild(table(["measure", "value", "reading"], [
      ["mean cosine between random pairs", fmt(a.mean_cosine, 3), "0 for isotropic vectors; high values mean a shared direction dominates"],
      ["variance of the first principal component", fmt(a.first_pc_variance, 3), "share of all variance"],
      ["IsoScore (Rudman et al. 2022)", fmt(a.isoscore, 3), "1 = isotropic"],
      ["spectral entropy", fmt(a.spectral_entropy, 3), "1 = variance spread evenly"],
      ["alignment / uniformity (Wang & Isola 2020)", fmt(a.alignment, 3) + " / " + fmt(a.uniformity, 3), "neighbour closeness / spread over the sphere"],
      ["k-occurrence skewness (k = " + hub.k + ")", fmt(hub.skewness, 2), "above 1: strong hubness (Radovanovic et al. 2010)"],
      ["Robin Hood index", fmt(hub.robin_hood, 3), "0 = every point equally often a neighbour"],
      ["hubs / anti-hubs", int(hub.hubs) + " / " + int(hub.antihubs), "points in many / no neighbour lists"]
    ], [false, true, false]));
    section.appendChild(how("Anisotropy on " + int(a.n) + " sampled rows; hubness over " + int(hub.n_points) + " points."));
    if (hub.top_hubs.length) {
      section.appendChild(el("h3", { text: "Strongest hubs" }));
      section.appendChild(el("div", { "class": "scroll" }, table(["id", "in how many neighbour lists", "text"],
        hub.top_hubs.map(function (h) { return [String(h.id), int(h.k_occurrence), textOf(h.id)]; }), [false, true, false])));
    }
    var d = g.duplicates;
    section.appendChild(el("h3", { text: "Duplicates" }));
    section.appendChild(how(int(d.exact_rows) + " exact duplicate rows in " + int(d.exact_groups) + " groups; " + int(d.near_pairs) +
      " near-duplicate pairs with cosine >= " + d.near_threshold + " among the k = " + g.k + " nearest neighbours (" + int(d.near_pairs_not_exact) + " of them not exact)."));
    var rows = [];
    d.exact_examples.forEach(function (group) { rows.push(["exact", group.join(", "), "1", group.map(textOf).filter(Boolean).slice(0, 2).join(" | ")]); });
    d.near_examples.forEach(function (p) { rows.push(["near", p.a + ", " + p.b, fmt(p.similarity, 4), [textOf(p.a), textOf(p.b)].filter(Boolean).join(" | ")]); });
    if (rows.length) { section.appendChild(el("div", { "class": "scroll" }, table(["kind", "ids", "cosine", "texts"], rows, [false, false, true, false]))); }
    var o = g.outliers;
    section.appendChild(el("h3", { text: "Outliers" }));
    section.appendChild(how("Rows whose mean distance to their k = " + o.k + " nearest neighbours has a robust z-score above " + o.threshold +
      " (median score " + fmt(o.median_score, 3) + "): " + int(o.count) + " found" + (o.ids.length < o.count ? ", the " + o.ids.length + " farthest listed." : ".")));
    if (o.ids.length) {
      section.appendChild(el("div", { "class": "scroll" }, table(["id", "kNN distance", "robust z", "text"],
        o.ids.map(function (id, i) { return [String(id), fmt(o.scores[i], 3), fmt(o.z_scores[i], 1), textOf(id)]; }), [false, true, true, false])));
    }
    if (g.labels) {
      var l = g.labels;
      section.appendChild(el("h3", { text: "Label structure" }));
      section.appendChild(table(["measure", "value"], [
        ["labels", int(l.n_labels)], ["kNN accuracy (k = " + l.k + ")", fmt(l.knn_accuracy, 3)], ["silhouette of the labels", fmt(l.silhouette, 3)],
        ["nearest class mean agreement", fmt(l.ncc_agreement, 3)], ["within / between class spread (NC1)", fmt(l.nc1, 2)]
      ], [false, true]));
      section.appendChild(how("Leave-one-out kNN vote over the shared graph; silhouette on " + int(l.sample_size) + " sampled rows."));
    }
  }

  function clusters() {
    var section = document.getElementById("clusters");
    var c = DATA.clusters, sel = c.k_selection, sup = c.support;
    section.appendChild(el("p", { "class": "verdict " + (sel.clear ? "good" : "warn"), id: "k-verdict",
      text: sel.reason.replace(/^no clear k/, "No clear k") }));
    section.appendChild(how(c.method + " with k = " + c.k + " on all " + int(c.n) + " rows (" + c.metric + "); k chosen by " +
      (sel.criterion === "auto" ? "stability, silhouette, gap statistic and BIC combined" : "the " + sel.criterion) +
      " of k-means fitted on a seeded sample of " + int(sel.sample_size) + " rows (docs/cluster.md, 'How k is chosen'). Stability of a cluster: mean Jaccard index with its best match when k-means is refitted on " +
      sup.stability_resamples + " resamples of " + int(sup.stability_sample) + " rows (Hennig 2007; >= " + sup.stable_jaccard + ": well supported, <= 0.5: dissolves). " +
      "Silhouette: mean over the cluster's members among " + int(sup.silhouette_sample) + " sampled rows (> 0: closer to their own cluster than to the next)."));
    var scores = c.metrics.internal, ext = c.metrics.external;
    var cards = el("div", { "class": "cards" });
    cards.appendChild(card(String(c.k), sel.clear ? "clusters" : "clusters shown (no clear k)"));
    cards.appendChild(card(String(sup.well_supported), "well supported"));
    cards.appendChild(card(fmt(scores.silhouette, 3), "silhouette (" + int(scores.n_sampled) + " rows)"));
    if (ext) { cards.appendChild(card(fmt(ext.nmi, 3), "NMI with the labels")); cards.appendChild(card(fmt(ext.ari, 3), "ARI with the labels")); }
    section.appendChild(cards);
    var curves = sel.curves, palette = { stability: "#4e79a7", silhouette: "#f28e2b" }, series = [];
    function points(name) {
      var cv = curves[name];
      return cv.k_values.map(function (k, i) { return [k, cv.scores[i], name + " at k = " + k + ": " + fmt(cv.scores[i], 3)]; });
    }
    ["stability", "silhouette"].forEach(function (name) {
      if (curves[name]) { series.push({ name: name + " (best k = " + curves[name].best_k + ")", color: palette[name], points: points(name), line: true, size: 2.5 }); }
    });
    if (curves.stability) {
      var ends = [curves.stability.k_values[0], curves.stability.k_values[curves.stability.k_values.length - 1]];
      series.push({ name: "supported at stability >= " + sel.min_stability, color: "#59a14f", dash: "4 3", width: 1.2, marker: "none", line: true,
        points: ends.map(function (k) { return [k, sel.min_stability]; }) });
    }
    series.push({ name: "chosen k = " + sel.best_k, color: "#e15759", size: 6, points: series[0].points.filter(function (p) { return p[0] === sel.best_k; }) });
    var fig = chart({ id: "k-selection", title: "Choosing k", xLabel: "k (log scale)", yLabel: "score (higher is better)", xLog: true, series: series });
    fig.appendChild(how("Stability: 1 - disagreement between k-means fits on two 80% subsamples / disagreement after randomly relabelling one (Lange et al. 2004); " +
      "1 = the resamples agree, 0 = chance. Silhouette of the fit on the sample."));
    section.appendChild(fig);
    [["gap", "gap statistic (Tibshirani et al. 2001)", "#76b7b2"], ["bic", "BIC of a Gaussian mixture (lower is better)", "#b07aa1"]].forEach(function (spec) {
      var cv = curves[spec[0]];
      if (!cv) { return; }
      var pts = points(spec[0]);
      var small = chart({ id: "k-" + spec[0], title: spec[1], xLabel: "k (log scale)", yLabel: spec[0], xLog: true,
        series: [{ name: spec[0], color: spec[2], points: pts, line: true, size: 2.5 },
          { name: "its pick: k = " + cv.best_k + " (" + cv.peak.replace("_", " ") + ")", color: "#e15759", size: 5, points: pts.filter(function (p) { return p[0] === cv.best_k; }) }] });
      section.appendChild(small);
    });
    section.appendChild(el("h3", { text: "Clusters" }));
    var rows = c.clusters.slice().sort(function (a, b) { return b.size - a.size; }).map(function (cl) {
      var j = sup.stability[String(cl.cluster)], s = sup.silhouette[String(cl.cluster)];
      var sw = el("span", {}, el("span", { "class": "swatch", style: "background:" + colour(cl.cluster) }), String(cl.cluster));
      var stable = el("span", { "class": "pill " + (j !== null && j >= sup.stable_jaccard ? "good" : "warn"), text: fmt(j, 2) });
      var examples = cl.examples.slice(0, 3).map(function (e) { return e.text || String(e.id); }).join(" | ");
      return [sw, int(cl.size), stable, fmt(s, 3), (cl.keywords || []).join(", "), examples];
    });
    section.appendChild(el("div", { "class": "scroll" }, table(["cluster", "size", "stability", "silhouette", "keywords (c-TF-IDF)", "closest to the centre"], rows,
      [false, true, true, true, false, false])));
  }

  function curation() {
    var section = document.getElementById("curation");
    var cu = DATA.curation, sd = cu.semdedup, nd = cu.near_duplicates, bal = cu.balanced;
    section.appendChild(how("What curating this set would do (embedlab curate dedup | sample). SemDeDup (Abbas et al. 2023): spherical k-means into " +
      int(sd.n_clusters) + " clusters; inside each, a row goes when its cosine to a row ranked before it (farther from the centroid) exceeds 1 - eps."));
    var curve = sd.eps.map(function (e, i) { return [e, sd.removed_fraction[i], "eps " + fmt(e, 4) + ": " + fmt(100 * sd.removed_fraction[i], 2) + "% removed"]; });
    var fig = chart({ id: "semdedup", title: "Rows SemDeDup removes", xLabel: "eps (log scale)", yLabel: "fraction removed", xLog: true,
      series: [{ name: "removed", color: "#4e79a7", points: curve, line: true }] });
    fig.appendChild(how("One pass gives every threshold: each row's largest similarity to an earlier-ranked row is stored once."));
    section.appendChild(fig);
    section.appendChild(el("h3", { text: "Largest groups of near duplicates" }));
    section.appendChild(how(int(nd.n_grouped) + " rows in " + int(nd.n_groups) + " groups joined by cosine >= " + nd.threshold +
      " among each row's nearest neighbours; the first row of each group would be kept."));
    if (nd.largest.length) {
      section.appendChild(el("div", { "class": "scroll" }, table(["rows", "weakest link", "ids", "texts"], nd.largest.map(function (g) {
        return [int(g.size), fmt(g.min_similarity, 4), g.ids.map(String).join(", "), g.ids.map(textOf).filter(Boolean).slice(0, 3).join(" | ")];
      }), [true, true, false, false])));
    }
    section.appendChild(el("h3", { text: "A balanced sample of " + int(bal.target) + " rows" }));
    section.appendChild(how("Vo et al. (2024): each cluster gives min(size, cap) rows, the cap found by bisection so the counts sum to the target; " +
      "a uniform sample would keep each cluster in proportion to its size."));
    section.appendChild(el("div", { "class": "scroll" }, table(["cluster", "rows", "balanced keeps", "uniform keeps (expected)"], bal.clusters.map(function (c) {
      var sw = el("span", {}, el("span", { "class": "swatch", style: "background:" + colour(c.cluster) }), String(c.cluster));
      return [sw, int(c.rows), int(c.balanced), fmt(c.uniform, 1)];
    }), [false, true, true, true])));
  }

  // ---------- interactive map ----------
  function mapSection() {
    var section = document.getElementById("map");
    var P = DATA.points, n = P.x.length, m = DATA.map;
    section.appendChild(how("Each point is a row placed by " + m.note + "." + (m.sampled ? " Beyond " + int(m.n_points) +
      " points a uniform sample is drawn, so every region keeps its share of points." : "") +
      " Points are painted in a fixed random order, so no cluster hides another; each well-supported cluster is named at its centre. Scroll to zoom, drag to pan, hover for a point's text; search looks at ids and the first " +
      DATA.map_text_chars + " characters of each text."));
    if (m.sampled) { section.appendChild(el("p", { "class": "note", text: "Showing a sample of " + int(m.n_points) + " of " + int(m.n_total) + " points." })); }
    var search = el("input", { type: "search", id: "map-search", placeholder: "Search texts and ids...", "aria-label": "search points" });
    var count = el("span", { id: "map-count", "class": "how" });
    var colourBy = el("select", { id: "map-colour", "aria-label": "colour points by" }, el("option", { value: "cluster", text: "colour: cluster" }));
    if (P.label) { colourBy.appendChild(el("option", { value: "label", text: "colour: label" })); }
    var reset = el("button", { type: "button", id: "map-reset", text: "Reset view" });
    section.appendChild(el("div", { "class": "map-tools" }, search, colourBy, reset, count));
    var canvas = el("canvas", { id: "map-canvas", "data-points": String(n) });
    var tip = el("div", { id: "map-tooltip" });
    section.appendChild(el("div", { "class": "map-wrap" }, canvas, tip));
    var legend = el("div", { "class": "legend", id: "map-legend" });
    section.appendChild(legend);

    var X = new Float32Array(P.x), Y = new Float32Array(P.y);
    var view = { scale: 1, tx: 0, ty: 0 }, size = { w: 0, h: 0, dpr: 1 };
    var matched = null, hovered = -1, mode = "cluster", pending = 0;
    var state = { drawn: 0, hovered: -1, matches: 0, n: n };
    var base = document.createElement("canvas");  // every point, redrawn only when the view or the colours change

    // a fixed pseudo-random painting order (so that no colour always lies on top) and the colours per point
    var order = new Uint32Array(n), seed = 12345;
    for (var o = 0; o < n; o++) { order[o] = o; }
    for (var q = n - 1; q > 0; q--) { seed = (seed * 1103515245 + 12345) % 2147483648; var r = seed % (q + 1), t = order[q]; order[q] = order[r]; order[r] = t; }
    var fills = new Array(n);
    function recolour() { for (var i = 0; i < n; i++) { fills[i] = matched && !matched[i] ? "#d5d9e0" : colour(mode === "label" ? P.label[i] : P.cluster[i]); } }

    // uniform grid over the data square [0, 10000]^2 for hover lookups (coordinates arrive scaled to it)
    var G = 128, cell = 10000 / G, buckets = new Array(G * G);
    for (var i = 0; i < n; i++) {
      var b = Math.min(G - 1, Math.floor(Y[i] / cell)) * G + Math.min(G - 1, Math.floor(X[i] / cell));
      (buckets[b] || (buckets[b] = [])).push(i);
    }
    var maxX = 1, maxY = 1;
    for (var k = 0; k < n; k++) { if (X[k] > maxX) { maxX = X[k]; } if (Y[k] > maxY) { maxY = Y[k]; } }
    // each well-supported cluster labelled at its centre (the median of its points) with its keywords
    var sup = DATA.clusters.support, centres = [];
    (function () {
      var members = {};
      for (var i = 0; i < n; i++) { (members[P.cluster[i]] || (members[P.cluster[i]] = [])).push(i); }
      function median(values) { values.sort(function (a, b) { return a - b; }); return values[values.length >> 1]; }
      DATA.clusters.clusters.forEach(function (c) {
        var j = sup.stability[String(c.cluster)], rows = members[c.cluster];
        if (j === null || j === undefined || j < sup.stable_jaccard || !rows) { return; }
        var words = (c.keywords || []).slice(0, 2).join(", ");
        centres.push({ x: median(rows.map(function (i) { return X[i]; })), y: median(rows.map(function (i) { return Y[i]; })),
          size: rows.length, text: words || "cluster " + c.cluster });
      });
      centres.sort(function (a, b) { return b.size - a.size; });
    })();
    function drawLabels(ctx) {  // largest clusters first; a label that would overlap one already drawn is left out
      var placed = [];
      ctx.font = "600 12px system-ui, sans-serif"; ctx.textAlign = "center"; ctx.textBaseline = "middle";
      ctx.lineJoin = "round"; ctx.lineWidth = 3.5; ctx.strokeStyle = "rgba(255,255,255,0.9)"; ctx.fillStyle = "#1d2330";
      centres.forEach(function (c) {
        var px = c.x * view.scale + view.tx, py = (maxY - c.y) * view.scale + view.ty, w = ctx.measureText(c.text).width + 6, h = 16;
        if (px < 0 || py < 0 || px > size.w || py > size.h) { return; }
        var box = [px - w / 2, py - h / 2, px + w / 2, py + h / 2];
        if (placed.some(function (b) { return box[0] < b[2] && b[0] < box[2] && box[1] < b[3] && b[1] < box[3]; })) { return; }
        placed.push(box); ctx.strokeText(c.text, px, py); ctx.fillText(c.text, px, py);
      });
      return placed.length;
    }
    function homeScale() { return Math.min(size.w * 0.96 / maxX, size.h * 0.94 / maxY); }
    function home() { var s = homeScale(); view.scale = s; view.tx = (size.w - maxX * s) / 2; view.ty = (size.h - maxY * s) / 2; }
    function fit() {
      var rect = canvas.getBoundingClientRect();
      size.dpr = window.devicePixelRatio || 1; size.w = rect.width; size.h = rect.height;
      canvas.width = base.width = Math.round(rect.width * size.dpr); canvas.height = base.height = Math.round(rect.height * size.dpr);
    }
    function radius() { return Math.max(1.2, Math.min(4, (n > 20000 ? 1.0 : 1.6) * Math.sqrt(view.scale / homeScale()))); }
    function renderBase() {
      var ctx = base.getContext("2d"), r = radius(), visible = 0, s = view.scale, tx = view.tx, ty = view.ty, last = null;
      ctx.setTransform(size.dpr, 0, 0, size.dpr, 0, 0);
      ctx.clearRect(0, 0, size.w, size.h);
      ctx.globalAlpha = matched ? 1 : 0.8;
      for (var j = 0; j < n; j++) {
        var i = order[j];
        if (matched && matched[i]) { continue; }  // matches are painted last, on top
        var px = X[i] * s + tx, py = (maxY - Y[i]) * s + ty;
        if (px < -r || py < -r || px > size.w + r || py > size.h + r) { continue; }
        if (fills[i] !== last) { last = fills[i]; ctx.fillStyle = last; }
        ctx.fillRect(px - r, py - r, 2 * r, 2 * r); visible++;
      }
      if (matched) {
        ctx.strokeStyle = "#1d2330"; ctx.lineWidth = 1.2;
        for (var h = 0; h < n; h++) {
          if (!matched[h]) { continue; }
          var mx = X[h] * s + tx, my = (maxY - Y[h]) * s + ty;
          if (mx < -r || my < -r || mx > size.w + r || my > size.h + r) { continue; }
          ctx.fillStyle = fills[h]; ctx.fillRect(mx - r, my - r, 2 * r, 2 * r); ctx.strokeRect(mx - r - 1.5, my - r - 1.5, 2 * r + 3, 2 * r + 3); visible++;
        }
      }
      ctx.globalAlpha = 1;
      var labelled = mode === "cluster" && !matched ? drawLabels(ctx) : 0;
      state.drawn = visible; state.labels = labelled;
      canvas.setAttribute("data-drawn", String(visible)); canvas.setAttribute("data-labels", String(labelled));
    }
    function paint() {  // the cached points plus the hover ring: cheap enough for every mouse move
      var ctx = canvas.getContext("2d");
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      ctx.drawImage(base, 0, 0);
      if (hovered >= 0) {
        ctx.setTransform(size.dpr, 0, 0, size.dpr, 0, 0);
        ctx.strokeStyle = "#000"; ctx.lineWidth = 2; ctx.beginPath();
        ctx.arc(X[hovered] * view.scale + view.tx, (maxY - Y[hovered]) * view.scale + view.ty, radius() + 4, 0, 2 * Math.PI); ctx.stroke();
      }
    }
    function redraw() { renderBase(); paint(); }
    function schedule() {  // coalesce zoom and drag events into one redraw per frame
      if (!pending) { pending = window.requestAnimationFrame(function () { pending = 0; redraw(); }); }
    }
    function nearest(clientX, clientY) {
      var rect = canvas.getBoundingClientRect(), mx = clientX - rect.left, my = clientY - rect.top;
      var dx = (mx - view.tx) / view.scale, dy = maxY - (my - view.ty) / view.scale, reach = 8 / view.scale;
      var best = -1, bestD = 64;
      var x0 = Math.max(0, Math.floor((dx - reach) / cell)), x1 = Math.min(G - 1, Math.floor((dx + reach) / cell));
      var y0 = Math.max(0, Math.floor((dy - reach) / cell)), y1 = Math.min(G - 1, Math.floor((dy + reach) / cell));
      for (var cy = y0; cy <= y1; cy++) {
        for (var cx = x0; cx <= x1; cx++) {
          var bucket = buckets[cy * G + cx];
          if (!bucket) { continue; }
          for (var a = 0; a < bucket.length; a++) {
            var i = bucket[a], ex = X[i] * view.scale + view.tx - mx, ey = (maxY - Y[i]) * view.scale + view.ty - my, d2 = ex * ex + ey * ey;
            if (d2 < bestD) { bestD = d2; best = i; }
          }
        }
      }
      return best;
    }
    function showTip(i, clientX, clientY) {
      var changed = i !== hovered;
      hovered = i; state.hovered = i;
      if (i < 0) { tip.style.display = "none"; if (changed) { paint(); } return; }
      if (changed) {
        tip.textContent = "";
        tip.appendChild(el("div", { "class": "tid", text: P.id[i] + " - cluster " + P.cluster[i] + (P.label ? " - " + P.label_names[P.label[i]] : "") }));
        if (P.text) { tip.appendChild(el("div", { "class": "ttext", text: P.text[i] })); }
        paint();
      }
      var rect = canvas.getBoundingClientRect(), x = clientX - rect.left + 14, y = clientY - rect.top + 14;
      tip.style.display = "block";
      tip.style.left = Math.min(x, rect.width - 390) + "px"; tip.style.top = Math.min(y, rect.height - 80) + "px";
    }
    var lowered = null;
    function runSearch() {
      var query = search.value.trim().toLowerCase();
      if (!query) { matched = null; state.matches = 0; count.textContent = ""; recolour(); redraw(); return; }
      if (!lowered) { lowered = P.id.map(function (id, i) { return (id + "\u0000" + (P.text ? P.text[i] : "")).toLowerCase(); }); }
      matched = new Uint8Array(n); var found = 0;
      for (var i = 0; i < n; i++) { if (lowered[i].indexOf(query) >= 0) { matched[i] = 1; found++; } }
      state.matches = found;
      count.textContent = int(found) + " of " + int(n) + " points match";
      recolour(); redraw();
    }
    function drawLegend() {
      legend.textContent = "";
      var sizes = {}, names = {};
      for (var i = 0; i < n; i++) { var g = mode === "label" ? P.label[i] : P.cluster[i]; sizes[g] = (sizes[g] || 0) + 1; }
      if (mode === "cluster") { DATA.clusters.clusters.forEach(function (c) { names[c.cluster] = (c.keywords || []).slice(0, 3).join(", "); }); }
      Object.keys(sizes).sort(function (a, b) { return sizes[b] - sizes[a]; }).forEach(function (g) {
        var name = mode === "label" ? P.label_names[+g] : (+g < 0 ? "noise" : g + (names[g] ? ": " + names[g] : ""));
        legend.appendChild(el("span", {}, el("span", { "class": "swatch", style: "background:" + colour(+g) }), name + " (" + int(sizes[g]) + ")"));
      });
    }

    var drag = null;
    canvas.addEventListener("wheel", function (e) {
      e.preventDefault();
      var rect = canvas.getBoundingClientRect(), mx = e.clientX - rect.left, my = e.clientY - rect.top, f = Math.exp(-e.deltaY * 0.0015);
      view.tx = mx - (mx - view.tx) * f; view.ty = my - (my - view.ty) * f; view.scale *= f; schedule();
    }, { passive: false });
    canvas.addEventListener("pointerdown", function (e) { drag = { x: e.clientX, y: e.clientY, tx: view.tx, ty: view.ty }; canvas.classList.add("dragging"); });
    window.addEventListener("pointerup", function () { drag = null; canvas.classList.remove("dragging"); });
    canvas.addEventListener("pointermove", function (e) {
      if (drag) { view.tx = drag.tx + e.clientX - drag.x; view.ty = drag.ty + e.clientY - drag.y; schedule(); return; }
      showTip(nearest(e.clientX, e.clientY), e.clientX, e.clientY);
    });
    canvas.addEventListener("pointerleave", function () { showTip(-1, 0, 0); });
    var typing = null;
    search.addEventListener("input", function () { clearTimeout(typing); typing = setTimeout(runSearch, 120); });
    colourBy.addEventListener("change", function () { mode = colourBy.value; recolour(); drawLegend(); redraw(); });
    reset.addEventListener("click", function () { home(); redraw(); });
    window.addEventListener("resize", function () { fit(); home(); redraw(); });
    fit(); home(); recolour(); drawLegend(); redraw();

    state.clientPoint = function (i) { var rect = canvas.getBoundingClientRect(); return [rect.left + X[i] * view.scale + view.tx, rect.top + (maxY - Y[i]) * view.scale + view.ty]; };
    state.search = function (query) { search.value = query; runSearch(); return state.matches; };
    state.redraw = redraw;
    return state;
  }

  function compression() {
    var section = document.getElementById("compression");
    var plan = DATA.compression;
    if (!plan) { section.appendChild(el("p", { "class": "note", text: DATA.compression_note || "No compression plan." })); return; }
    section.appendChild(how("Quick plan: " + plan.points.length + " configurations of " + (plan.points.length ? new Set(plan.points.map(function (p) { return p.codec.split("+rescore")[0]; })).size : 0) +
      " codecs on " + int(plan.n_rows) + " rows, " + plan.queries + "; recall@" + plan.k + " against exact " + plan.metric + " search; rescoring re-ranks M x " + plan.k +
      " candidates by their full vectors. Anchors are faiss indexes (index_factory) measured on the same split. " + fmt(plan.timings.seconds, 0) + " s."));
    var alone = plan.points.filter(function (p) { return p.rescore === null; }), rescored = plan.points.filter(function (p) { return p.rescore !== null; });
    function pts(list) { return list.map(function (p) { return [p.bytes_per_vector, p.recall_at_k, p.codec + ": " + p.bytes_per_vector + " B, recall " + fmt(p.recall_at_k, 4)]; }); }
    function front(list) { return pts(list.filter(function (p) { return p.on_frontier; }).sort(function (a, b) { return a.bytes_per_vector - b.bytes_per_vector; })); }
    var series = [
      { name: "codes alone", color: "#4e79a7", points: pts(alone), fill: "#fff" },
      { name: "", color: "#4e79a7", points: front(alone), line: true, marker: "none" },
      { name: "rescored (x2-x10)", color: "#59a14f", points: pts(rescored), fill: "#fff", size: 3 },
      { name: "", color: "#59a14f", points: front(rescored), line: true, marker: "none", dash: "5,3" },
      { name: "faiss anchors", color: "#e15759", points: pts(plan.anchors), marker: "diamond", size: 4.5 }
    ];
    var fig = chart({ id: "frontier", title: "Recall versus bytes per vector", xLabel: "bytes per vector (log)", yLabel: "recall@" + plan.k, xLog: true, series: series, ymax: 1.0 });
    fig.appendChild(how("Lines join the Pareto frontier of each regime (no other point has fewer bytes and higher recall). Hover a point for its codec."));
    section.appendChild(fig);
    function timed(list, times) { return list.map(function (p, i) { return { point: p, query_ms: times[i].query_ms }; }); }
    var rows = timed(plan.points, plan.timings.points).concat(timed(plan.anchors, plan.timings.anchors))
      .sort(function (a, b) { return a.point.bytes_per_vector - b.point.bytes_per_vector || b.point.recall_at_k - a.point.recall_at_k; })
      .map(function (row) {
        var p = row.point;
        return [p.codec, int(p.bytes_per_vector), fmt(p.recall_at_k, 4), p.rescore === null ? "-" : "x" + p.rescore, fmt(row.query_ms, 2), p.on_frontier ? "yes" : ""];
      });
    section.appendChild(el("div", { "class": "scroll" }, table(["configuration", "bytes/vector", "recall@" + plan.k, "rescore", "ms/query", "frontier"], rows,
      [false, true, true, true, true, false])));
    var failed = Object.keys(plan.failures || {});
    if (failed.length) { section.appendChild(how("Skipped: " + failed.map(function (k) { return k + " (" + plan.failures[k] + ")"; }).join("; "))); }
  }

  var report = { errors: [] };
  [["subtitle", subtitle], ["summary", summary], ["geometry", geometry], ["clusters", clusters], ["curation", curation], ["map", function () { report.map = mapSection(); }], ["compression", compression]]
    .forEach(function (step) {
      try { step[1](); } catch (error) {
        report.errors.push(step[0] + ": " + error.message);
        var where = document.getElementById(step[0]);
        if (where) { where.appendChild(el("p", { "class": "note", text: "This section could not be drawn: " + error.message })); }
        if (window.console) { console.error(error); }
      }
    });
  report.ready = true;
  window.embedlabReport = report;
}());
