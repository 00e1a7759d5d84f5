// Sightline UI: draws the charts a page describes, drag-to-zoom, copy
// buttons and the live log tail. Pages work without it, minus those.
(function () {
  "use strict";
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  const palette = ["#3b5bdb", "#e8590c", "#2f9e44", "#ae3ec9", "#1098ad", "#f08c00", "#e03131", "#5c7cfa", "#66a80f", "#d6336c"];

  function fmtValue(v, unit) {
    if (v == null || !isFinite(v)) return "—";
    if (unit === "s") return v < 1 ? (v * 1000).toFixed(1) + " ms" : v.toFixed(2) + " s";
    if (unit === "%") return (v * 100).toFixed(Math.abs(v) < 0.1 ? 2 : 1) + "%";
    const a = Math.abs(v);
    if (a >= 1e6) return (v / 1e6).toFixed(2) + "M";
    if (a >= 1e4) return (v / 1e3).toFixed(1) + "k";
    if (Number.isInteger(v)) return String(v);
    return a >= 10 ? v.toFixed(1) : v.toPrecision(3);
  }

  function drawChart(el) {
    if (el.dataset.drawn || typeof uPlot === "undefined") return;
    const src = el.querySelector("script[type='application/json']");
    if (!src) return;
    const spec = JSON.parse(src.textContent);
    el.dataset.drawn = "1";
    const width = Math.max(200, el.clientWidth || 600);
    const height = parseInt(el.dataset.height || "220", 10);
    const bars = spec.kind === "bars";
    const axisColor = css("--muted");
    const grid = { stroke: css("--line"), width: 1 };
    const series = [{}].concat(spec.series.map((s, i) => {
      const color = s.color || palette[i % palette.length];
      const o = {
        label: s.name, stroke: color, width: bars ? 0 : 1.5,
        value: (u, v) => fmtValue(v, spec.unit),
        spanGaps: false,
      };
      if (bars) {
        o.fill = color;
        o.paths = uPlot.paths.bars({ size: [0.9, 60], align: 1 });
        o.points = { show: false };
      }
      return o;
    }));
    const opts = {
      width, height,
      series,
      legend: { show: spec.legend !== false },
      cursor: { drag: { x: !!spec.zoom, y: false, setScale: false } },
      axes: [
        { stroke: axisColor, grid, ticks: grid },
        {
          stroke: axisColor, grid, ticks: grid,
          values: (u, vals) => vals.map((v) => fmtValue(v, spec.unit)),
          // Wide enough for the longest label.
          size: (u, vals) => Math.max(40, 16 + 7 * Math.max(0, ...(vals || []).map((v) => String(v).length))),
        },
      ],
      scales: { x: spec.xrange ? { time: true, range: () => spec.xrange } : { time: true } },
      // Times read in UTC, like the tables.
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      hooks: {},
    };
    if (spec.zoom) {
      opts.hooks.setSelect = [(u) => {
        if (u.select.width < 3) return;
        const a = u.posToVal(u.select.left, "x");
        const b = u.posToVal(u.select.left + u.select.width, "x");
        window.location.href = spec.zoom
          .replace("__START__", new Date(a * 1000).toISOString())
          .replace("__END__", new Date(b * 1000).toISOString());
      }];
    }
    const data = [spec.x].concat(spec.series.map((s) => s.values));
    const plot = new uPlot(opts, data, el);
    el.plot = plot;
    window.addEventListener("resize", () => plot.setSize({ width: Math.max(200, el.clientWidth), height }));
  }

  function copy(btn) {
    const text = btn.dataset.copy;
    const done = () => { const t = btn.textContent; btn.textContent = "Copied"; setTimeout(() => (btn.textContent = t), 1200); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, () => fallbackCopy(text, done));
    } else {
      fallbackCopy(text, done);
    }
  }
  function fallbackCopy(text, done) {
    const ta = document.createElement("textarea");
    ta.value = text; ta.style.position = "fixed"; ta.style.opacity = "0";
    document.body.appendChild(ta); ta.select();
    try { document.execCommand("copy"); } catch (e) { /* nothing to do */ }
    ta.remove(); done();
  }

  let tail = null;
  function toggleTail(btn) {
    const table = document.getElementById("log-rows");
    if (tail) { tail.close(); tail = null; btn.textContent = "Live tail"; btn.classList.remove("live"); return; }
    const url = "/ui/logs/tail?q=" + encodeURIComponent(btn.dataset.q || "");
    tail = new EventSource(url);
    btn.textContent = "Stop tail"; btn.classList.add("live");
    tail.onerror = () => {
      // A refused query or an ended session: stop, and say so.
      if (tail && tail.readyState === EventSource.CLOSED) {
        tail = null; btn.textContent = "Live tail (stopped)"; btn.classList.remove("live");
      }
    };
    tail.addEventListener("log", (ev) => {
      let row; try { row = JSON.parse(ev.data); } catch (e) { return; }
      const tr = document.createElement("tr");
      tr.className = "tailed";
      const td = (text, cls) => { const c = document.createElement("td"); c.textContent = text; if (cls) c.className = cls; tr.appendChild(c); };
      td((row.timestamp || new Date().toISOString()).replace("T", " ").slice(0, 23), "ts");
      td(row.level || "", "lvl-" + (row.level || ""));
      td(row.service || "");
      td(row.message || JSON.stringify(row), "msg");
      const body = table && table.tBodies[0];
      if (body) body.insertBefore(tr, body.firstChild);
      while (body && body.rows.length > 2000) body.deleteRow(body.rows.length - 1);
    });
  }

  function init(root) {
    root.querySelectorAll(".chart").forEach(drawChart);
  }
  document.addEventListener("click", (ev) => {
    const c = ev.target.closest("[data-copy]");
    if (c) { ev.preventDefault(); copy(c); return; }
    const t = ev.target.closest("[data-tail]");
    if (t) { ev.preventDefault(); toggleTail(t); }
  });
  document.addEventListener("DOMContentLoaded", () => init(document));
  document.addEventListener("htmx:load", (ev) => init(ev.target));
})();
