// The lineage page: lays the graph out in columns (ancestors left of the root, descendants right)
// and draws it as inline SVG. Each node is a link to its page; colour = kind, outline = state.
"use strict";

(function () {
  const SVGNS = "http://www.w3.org/2000/svg";
  const NODE_W = 190, NODE_H = 38, COL_GAP = 70, ROW_GAP = 14, PAD = 10;
  const BAD = ["failed", "lost", "timed_out", "stopped"], BUSY = ["queued", "starting", "running", "deploying"];

  function svgEl(tag, attrs, text) {
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // Column of each node: -distance from the root along parent links, +distance along child links.
  function columns(graph) {
    const col = { [graph.root]: 0 };
    const up = {}, down = {};
    for (const e of graph.edges) {
      (up[e.to] = up[e.to] || []).push(e.from);
      (down[e.from] = down[e.from] || []).push(e.to);
    }
    for (const [links, step] of [[up, -1], [down, 1]]) {
      let frontier = [graph.root];
      const seen = new Set(frontier);
      while (frontier.length) {
        const next = [];
        for (const ref of frontier) {
          for (const other of links[ref] || []) {
            if (seen.has(other)) continue;
            seen.add(other);
            if (!(other in col)) col[other] = col[ref] + step;
            next.push(other);
          }
        }
        frontier = next;
      }
    }
    return col;
  }

  function stateClass(state) {
    if (BAD.includes(state)) return "state-bad";
    if (BUSY.includes(state)) return "state-busy";
    return state ? "state-ok" : "state-none";
  }

  function draw(box, graph) {
    const col = columns(graph);
    const cols = [...new Set(Object.values(col))].sort((a, b) => a - b);
    const rows = {};
    const pos = {};
    for (const n of graph.nodes) {
      const c = col[n.ref] ?? 0;
      const r = (rows[c] = (rows[c] || 0) + 1) - 1;
      pos[n.ref] = { x: PAD + cols.indexOf(c) * (NODE_W + COL_GAP), y: PAD + r * (NODE_H + ROW_GAP) };
    }
    const width = PAD * 2 + cols.length * (NODE_W + COL_GAP) - COL_GAP;
    const height = PAD * 2 + Math.max(1, ...Object.values(rows)) * (NODE_H + ROW_GAP) - ROW_GAP;
    const svg = svgEl("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "lineage-graph",
      role: "img", "aria-label": "lineage of " + graph.root });
    for (const e of graph.edges) {
      const a = pos[e.from], b = pos[e.to];
      if (!a || !b) continue;
      const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2, mx = (x1 + x2) / 2;
      svg.appendChild(svgEl("path", { d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`, class: "edge",
        "data-from": e.from, "data-to": e.to }));
    }
    for (const n of graph.nodes) {
      const p = pos[n.ref];
      const g = svgEl("g", { class: `node kind-${n.kind} ${stateClass(n.state)}` + (n.ref === graph.root ? " root" : ""),
        "data-ref": n.ref, "data-kind": n.kind, "data-state": n.state, transform: `translate(${p.x},${p.y})` });
      g.appendChild(svgEl("title", {}, `${n.kind} ${n.label}${n.state ? " · " + n.state : ""}`));
      g.appendChild(svgEl("rect", { width: NODE_W, height: NODE_H, rx: 6 }));
      g.appendChild(svgEl("text", { x: 8, y: 15, class: "label" }, n.label.length > 28 ? n.label.slice(0, 27) + "…" : n.label));
      g.appendChild(svgEl("text", { x: 8, y: 30, class: "sub" }, n.kind + (n.state ? " · " + n.state : "")));
      if (n.url) {
        const a = svgEl("a", { href: n.url });
        a.appendChild(g);
        svg.appendChild(a);
      } else {
        svg.appendChild(g);
      }
    }
    box.replaceChildren(svg);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const box = document.getElementById("lineage");
    const data = document.getElementById("lineage-data");
    if (box && data) draw(box, JSON.parse(data.textContent));
  });
})();
