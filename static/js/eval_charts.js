// Small SVG charts for the evaluation page: line charts on [0, 1] axes with a marker, and
// heatmap tables. Hand-drawn because PR curves are not functions of x (a time-series library
// assumes they are) and clicks must map back to the curve point under the cursor.
const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

// lineChart(container, {series: [{x: [], y: [], color, label, thresholds?}], marker: {x, y},
//   vline: x, xLabel, yLabel, onPick(point)}) — x and y both in [0, 1].
export function lineChart(container, options) {
  const width = 320, height = 240, left = 40, right = 10, top = 10, bottom = 34;
  const w = width - left - right, h = height - top - bottom;
  const sx = (x) => left + x * w;
  const sy = (y) => top + (1 - y) * h;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img" });
  for (let t = 0; t <= 1.0001; t += 0.25) {
    root.append(svg("line", { x1: sx(t), x2: sx(t), y1: top, y2: top + h, class: "grid" }));
    root.append(svg("line", { x1: left, x2: left + w, y1: sy(t), y2: sy(t), class: "grid" }));
    const xt = svg("text", { x: sx(t), y: top + h + 14, class: "tick", "text-anchor": "middle" });
    xt.textContent = t.toFixed(2);
    const yt = svg("text", { x: left - 4, y: sy(t) + 4, class: "tick", "text-anchor": "end" });
    yt.textContent = t.toFixed(2);
    root.append(xt, yt);
  }
  const xl = svg("text", { x: left + w / 2, y: height - 4, class: "axis", "text-anchor": "middle" });
  xl.textContent = options.xLabel || "";
  const yl = svg("text", { x: 10, y: top + h / 2, class: "axis", "text-anchor": "middle",
    transform: `rotate(-90 10 ${top + h / 2})` });
  yl.textContent = options.yLabel || "";
  root.append(xl, yl);
  for (const series of options.series) {
    const points = [];
    series.x.forEach((x, i) => {
      const y = series.y[i];
      if (x !== null && y !== null && Number.isFinite(x) && Number.isFinite(y)) points.push(`${sx(x).toFixed(1)},${sy(y).toFixed(1)}`);
    });
    if (points.length) {
      root.append(svg("polyline", { points: points.join(" "), fill: "none", stroke: series.color, "stroke-width": 1.8, class: "series" }));
    }
  }
  if (options.vline !== undefined && options.vline !== null) {
    root.append(svg("line", { x1: sx(options.vline), x2: sx(options.vline), y1: top, y2: top + h, class: "vline" }));
  }
  if (options.marker && Number.isFinite(options.marker.x) && Number.isFinite(options.marker.y)) {
    root.append(svg("circle", { cx: sx(options.marker.x), cy: sy(options.marker.y), r: 5, class: "marker" }));
  }
  if (options.series.length > 1) {
    options.series.forEach((series, i) => {
      const y = top + 12 + i * 13;
      root.append(svg("line", { x1: left + w - 70, x2: left + w - 56, y1: y - 4, y2: y - 4, stroke: series.color, "stroke-width": 2 }));
      const label = svg("text", { x: left + w - 52, y, class: "legend" });
      label.textContent = series.label;
      root.append(label);
    });
  }
  if (options.onPick) {
    root.classList.add("pickable");
    root.addEventListener("click", (event) => {
      const box = root.getBoundingClientRect();
      const px = ((event.clientX - box.left) / box.width) * width;
      const py = ((event.clientY - box.top) / box.height) * height;
      options.onPick({ x: (px - left) / w, y: 1 - (py - top) / h, px, py, sx, sy });
    });
  }
  container.replaceChildren(root);
  return root;
}

// The curve point nearest to a click (in chart pixels) that has a threshold.
export function nearestPoint(curve, xKey, yKey, pick) {
  let best = null, bestDistance = Infinity;
  curve[xKey].forEach((x, i) => {
    const y = curve[yKey][i];
    const threshold = curve.thresholds[i];
    if (x === null || y === null || threshold === null) return;
    const distance = Math.hypot(pick.sx(x) - pick.px, pick.sy(y) - pick.py);
    if (distance < bestDistance) { bestDistance = distance; best = { x, y, threshold }; }
  });
  return best;
}

// A heatmap as a table: counts shaded by value (diverging for a difference matrix).
export function heatmap(container, { names, matrix, diverging = false, title }) {
  let max = 0;
  for (const row of matrix) for (const v of row) max = Math.max(max, Math.abs(v));
  const table = document.createElement("table");
  table.className = "heatmap";
  table.setAttribute("aria-label", title);
  const head = table.createTHead().insertRow();
  head.append(document.createElement("th"));
  for (const name of names) {
    const th = document.createElement("th");
    th.textContent = name;
    th.className = "col";
    head.append(th);
  }
  const body = table.createTBody();
  matrix.forEach((row, i) => {
    const tr = body.insertRow();
    const th = document.createElement("th");
    th.textContent = names[i];
    tr.append(th);
    row.forEach((value, j) => {
      const td = tr.insertCell();
      td.textContent = value;
      const strength = max ? Math.abs(value) / max : 0;
      const hue = diverging ? (value < 0 ? "229, 72, 77" : "48, 164, 108") : "62, 99, 221";
      td.style.background = `rgba(${hue}, ${(0.08 + 0.8 * strength).toFixed(3)})`;
      if (strength > 0.6) td.style.color = "#fff";
      td.title = `${names[i]} & ${names[j]}: ${value}`;
    });
  });
  container.replaceChildren(table);
}
