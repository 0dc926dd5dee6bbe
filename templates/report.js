/* reportgen report: the map, its tooltip, and the image viewer. No library, nothing fetched. */
(function () {
  "use strict";
  var PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2",
    "#c7c7c7", "#dbdb8d", "#9edae5"];
  var SHAPES = ["circle", "square", "triangle", "diamond", "down", "cross", "star", "hex"];
  var NS = "http://www.w3.org/2000/svg";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var viewer = document.getElementById("viewer");
  var tooltip = document.getElementById("tooltip");
  var clusterNames = {};  // cluster id -> name
  data.clusters.forEach(function (c) { clusterNames[c[0]] = c[1]; });

  function pct(p) { return Math.round(p * 100) + "%"; }

  // The group of images in no cluster (number -1) is grey; clusters take the palette in turn.
  function colour(c) { return c < 0 ? "#a0aec0" : PALETTE[c % PALETTE.length]; }

  function describe(i, fallback) {
    var d = data.images[String(i)];
    var lines = [];
    if (!d) { return [fallback || ""]; }
    lines.push(d.p);
    if (d.l !== null) { lines.push("class: " + d.l); }
    lines.push(d.c < 0 ? "not in any cluster" : "cluster " + d.c + ": " + clusterNames[d.c]);
    lines.push("predictions: " + d.t.map(function (t) { return t[0] + " " + pct(t[1]); }).join(", "));
    if (d.o) { lines.push(d.l !== null ? "oddball: outside its class's main cluster" : "outlier: far from its cluster's centre"); }
    return lines;
  }

  function fillText(el, lines) {
    el.textContent = "";
    lines.forEach(function (line, k) {
      var p = document.createElement(k === 0 ? "strong" : "div");
      p.textContent = line;
      el.appendChild(p);
    });
  }

  function openViewer(i, src, fallback) {
    var media = viewer.querySelector(".viewer-media");
    media.textContent = "";
    if (src) {
      var img = document.createElement("img");
      img.className = "viewer-img";
      img.src = src;
      img.alt = fallback || "";
      media.appendChild(img);
    }
    fillText(viewer.querySelector(".viewer-text"), describe(i, fallback));
    viewer.hidden = false;
    viewer.querySelector(".viewer-close").focus();
  }

  function closeViewer() { viewer.hidden = true; }

  // Heat maps: a tile's button shows the photo, then each of its maps in turn; a legend's buttons set every tile
  // of its section. The overlays are in data.images[i].m, by kind.
  var SHORT = { prediction: "top class", cluster: "cluster", "class": "own class", part: "sub-cluster" };
  function showView(tile, k) {
    var btn = tile.querySelector(".cam"), img = tile.querySelector("img"), badge = tile.querySelector(".cam-label");
    if (!btn || !img) { return; }
    var views = btn.getAttribute("data-views").split(" "), labels = JSON.parse(btn.getAttribute("data-labels"));
    var d = data.images[tile.getAttribute("data-i")], maps = (d && d.m) || {};
    if (!img.getAttribute("data-photo")) { img.setAttribute("data-photo", img.src); }
    if (k < 0 || k > views.length || (k > 0 && !maps[views[k - 1]])) { k = 0; }
    img.src = k ? maps[views[k - 1]] : img.getAttribute("data-photo");
    btn.setAttribute("data-state", String(k));
    btn.setAttribute("aria-pressed", k ? "true" : "false");
    btn.title = k ? labels[k - 1] + " (press again for the next view)" : "Show where the network looked";
    badge.hidden = !k;
    badge.textContent = k ? SHORT[views[k - 1]] || views[k - 1] : "";
    badge.title = k ? labels[k - 1] : "";
  }

  document.addEventListener("click", function (ev) {
    var cam = ev.target.closest ? ev.target.closest(".tile .cam") : null;
    if (cam) {
      var n = cam.getAttribute("data-views").split(" ").length + 1;
      showView(cam.closest(".tile"), (Number(cam.getAttribute("data-state") || 0) + 1) % n);
      return;
    }
    var all = ev.target.closest ? ev.target.closest("[data-cam-all]") : null;
    if (all) {
      var kind = all.getAttribute("data-cam-all"), scope = all.closest("section") || document;
      scope.querySelectorAll(".tile .cam").forEach(function (b) {
        showView(b.closest(".tile"), kind === "photo" ? 0 : b.getAttribute("data-views").split(" ").indexOf(kind) + 1);
      });
      return;
    }
    var tile = ev.target.closest ? ev.target.closest(".tile") : null;
    if (tile) {
      var img = tile.querySelector("img");
      openViewer(tile.getAttribute("data-i"), img ? img.src : null, img ? img.alt : "");
      return;
    }
    if (ev.target === viewer || (ev.target.classList && ev.target.classList.contains("viewer-close"))) { closeViewer(); }
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape") { closeViewer(); }
    if (ev.key === "Enter" && document.activeElement && document.activeElement.classList.contains("tile")) {
      document.activeElement.click();
    }
  });

  function shapePath(kind, r) {
    var h = r * 0.87;
    switch (kind) {
      case "square": return "M" + -r + "," + -r + "h" + 2 * r + "v" + 2 * r + "h" + -2 * r + "z";
      case "triangle": return "M0," + -r * 1.15 + "L" + h * 1.15 + "," + r * 0.6 + "L" + -h * 1.15 + "," + r * 0.6 + "z";
      case "diamond": return "M0," + -r * 1.3 + "L" + r * 1.3 + ",0L0," + r * 1.3 + "L" + -r * 1.3 + ",0z";
      case "down": return "M0," + r * 1.15 + "L" + h * 1.15 + "," + -r * 0.6 + "L" + -h * 1.15 + "," + -r * 0.6 + "z";
      case "cross": var a = r * 0.4; return "M" + -a + "," + -r + "h" + 2 * a + "v" + (r - a) + "h" + (r - a) + "v" + 2 * a + "h" + -(r - a) + "v" + (r - a) + "h" + -2 * a + "v" + -(r - a) + "h" + -(r - a) + "v" + -2 * a + "h" + (r - a) + "z";
      case "star": var s = ""; for (var k = 0; k < 10; k++) { var rr = k % 2 ? r * 0.5 : r * 1.25; var ang = Math.PI * k / 5 - Math.PI / 2; s += (k ? "L" : "M") + (rr * Math.cos(ang)).toFixed(2) + "," + (rr * Math.sin(ang)).toFixed(2); } return s + "z";
      case "hex": var t = ""; for (var q = 0; q < 6; q++) { var an = Math.PI * q / 3; t += (q ? "L" : "M") + (r * 1.1 * Math.cos(an)).toFixed(2) + "," + (r * 1.1 * Math.sin(an)).toFixed(2); } return t + "z";
      default: return "M" + -r + ",0a" + r + "," + r + " 0 1,0 " + 2 * r + ",0a" + r + "," + r + " 0 1,0 " + -2 * r + ",0";
    }
  }

  // Class k is drawn as one of 24 glyphs: 8 shapes, each solid, hollow or with a hole, so that up to 24 classes
  // (and 20 comfortably) stay apart; past 24 they repeat, and hover and the legend still tell.
  var STYLES = ["solid", "hollow", "holed"];
  function glyph(el, k, r, colour) {
    var shape = SHAPES[k % SHAPES.length], style = STYLES[Math.floor(k / SHAPES.length) % STYLES.length];
    var d = shapePath(shape, r);
    if (style === "holed") { d += shapePath(shape, r * 0.45); el.setAttribute("fill-rule", "evenodd"); }
    el.setAttribute("d", d);
    if (style === "hollow") {  // inline style: the stylesheet's outline of points would hide an attribute
      el.style.fill = "#fff";
      el.style.strokeWidth = Math.max(1.2, r * 0.35).toFixed(1);
      if (!el.classList.contains("odd")) { el.style.stroke = colour; }
    } else {
      el.style.fill = colour;
    }
  }

  var svg = document.getElementById("map-svg");
  function drawMap(view) {
    if (!svg) { return; }
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    var W = 820, H = 560, pad = 20;
    var pts = data.points.filter(function (p) { return view === "pca" || p[3] !== null; });
    var xi = view === "pca" ? 1 : 3, yi = xi + 1;
    var xs = pts.map(function (p) { return p[xi]; }), ys = pts.map(function (p) { return p[yi]; });
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    var y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    var sx = (W - 2 * pad) / ((x1 - x0) || 1), sy = (H - 2 * pad) / ((y1 - y0) || 1);
    var r = pts.length > 5000 ? 2 : pts.length > 1000 ? 3 : 5;
    var frag = document.createDocumentFragment();
    pts.forEach(function (p) {
      var d = data.images[String(p[0])];
      var cls = d.l === null ? 0 : data.classes.indexOf(d.l);
      var el = document.createElementNS(NS, "path");
      el.setAttribute("class", d.o ? "pt odd" : "pt");
      glyph(el, cls, r, colour(d.c));
      el.setAttribute("transform", "translate(" + (pad + (p[xi] - x0) * sx).toFixed(1) + "," + (H - pad - (p[yi] - y0) * sy).toFixed(1) + ")");
      el.setAttribute("data-i", p[0]);
      frag.appendChild(el);
    });
    svg.appendChild(frag);
  }

  if (svg) {
    svg.addEventListener("mousemove", function (ev) {
      var i = ev.target.getAttribute && ev.target.getAttribute("data-i");
      if (!i) { tooltip.hidden = true; return; }
      var d = data.images[i];
      tooltip.textContent = "";
      if (d.h) { var im = document.createElement("img"); im.src = d.h; im.alt = d.p; tooltip.appendChild(im); }
      var txt = document.createElement("div");
      fillText(txt, describe(i));
      tooltip.appendChild(txt);
      tooltip.hidden = false;
      var x = ev.clientX + 14, y = ev.clientY + 14;
      if (x + 260 > window.innerWidth) { x = ev.clientX - 270; }
      if (y + tooltip.offsetHeight > window.innerHeight) { y = ev.clientY - tooltip.offsetHeight - 10; }
      tooltip.style.left = x + "px";
      tooltip.style.top = y + "px";
    });
    svg.addEventListener("mouseleave", function () { tooltip.hidden = true; });
    svg.addEventListener("click", function (ev) {
      var i = ev.target.getAttribute && ev.target.getAttribute("data-i");
      if (i) { tooltip.hidden = true; openViewer(i, data.images[i].h, data.images[i].p); }
    });
    document.querySelectorAll(".map-controls button").forEach(function (b) {
      b.addEventListener("click", function () {
        document.querySelectorAll(".map-controls button").forEach(function (o) { o.classList.remove("active"); });
        b.classList.add("active");
        drawMap(b.getAttribute("data-view"));
      });
    });
    var legend = document.querySelector('[data-legend="clusters"]');
    var classLegend = document.querySelector('[data-legend="classes"]');
    data.clusters.forEach(function (c) {
      var item = document.createElement("span");
      var sw = document.createElement("i");
      sw.style.background = colour(c[0]);
      item.appendChild(sw);
      item.appendChild(document.createTextNode(c[0] < 0 ? c[1] : c[0] + ": " + c[1]));
      legend.appendChild(item);
    });
    data.classes.forEach(function (name, k) {
      var item = document.createElement("span");
      var s = document.createElementNS(NS, "svg");
      s.setAttribute("viewBox", "-7 -7 14 14");
      s.setAttribute("class", "shape");
      var p = document.createElementNS(NS, "path");
      glyph(p, k, 5, "#4a5568");
      s.appendChild(p);
      item.appendChild(s);
      item.appendChild(document.createTextNode(name));
      classLegend.appendChild(item);
    });
    drawMap("pca");
  }
})();
