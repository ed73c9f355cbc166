// Time charts on uPlot (vendored): one signal, or health indices, with what the engine knows drawn
// on top — ISO zone bands behind vibration, planned work as shaded spans, the predicted failure
// time with its interval, failures and repairs that happened, and a "now" line. Everything in simulated time, UTC.

import uPlot from "../vendor/uplot/uPlot.esm.js";
import { shortTime, simTime } from "./format.js";

// Okabe–Ito colours: told apart by colour-blind viewers and on a washed-out projector.
export const SERIES_COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"];
const ZONE_FILLS = ["rgba(0,158,115,0.10)", "rgba(86,180,233,0.12)", "rgba(230,159,0,0.16)", "rgba(213,94,0,0.16)"];
const ORDER_FILL = "rgba(0,114,178,0.16)";
const FAILURE_STROKE = "#b3261e";
const REPAIR_STROKE = "#009E73";
const FONT = "12px system-ui, sans-serif";

// Ticks fall on UTC hours and days; labels are 24-hour UTC like the rest of the page.
const utc = (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC");
const DAY_S = 86400;

function tickLabel(ts, incrementS) {
  const when = simTime(ts); // "Tue 2026-01-06 14:00"
  const day = `${when.slice(0, 3)} ${when.slice(12, 14)}`;
  if (incrementS >= DAY_S) return day;
  const time = when.slice(15);
  return time === "00:00" ? `${time}\n${day}` : time;
}

/**
 * @param {HTMLElement} host
 * @param {{title: string, series: {label: string, unit: string, digits: number}[],
 *          height?: number, yRange?: Function, overlay: () => object, xRange: () => number[]}} spec
 */
export function timeChart(host, spec) {
  const height = spec.height ?? 150;
  const opts = {
    title: spec.title,
    width: Math.max(host.clientWidth, 200),
    height,
    tzDate: utc,
    cursor: { drag: { x: false, y: false } },
    scales: {
      x: { time: true, range: () => spec.xRange() },
      y: { range: spec.yRange ?? ((u, min, max) => paddedRange(min, max)) },
    },
    series: [
      { value: (u, ts) => (ts === null ? "—" : simTime(ts)) },
      ...spec.series.map((s, i) => ({
        label: s.label,
        stroke: SERIES_COLOURS[i % SERIES_COLOURS.length],
        width: 1.5,
        spanGaps: false,
        value: (u, v) => (v === null || v === undefined ? "—" : `${v.toFixed(s.digits)} ${s.unit}`),
      })),
    ],
    axes: [
      {
        font: FONT,
        values: (u, splits, axis, space, incrementS) => splits.map((ts) => tickLabel(ts, incrementS)),
      },
      { font: FONT, size: 52 },
    ],
    hooks: {
      drawClear: [(u) => drawZones(u, spec.overlay())],
      draw: [(u) => drawMarks(u, spec.overlay())],
    },
  };
  const empty = [[], ...spec.series.map(() => [])];
  const plot = new uPlot(opts, empty, host);
  const resize = new ResizeObserver(() => {
    const width = Math.max(host.clientWidth, 200);
    if (width !== plot.width) plot.setSize({ width, height });
  });
  resize.observe(host);
  return {
    plot,
    setData(data) {
      plot.setData(data);
    },
    redraw() {
      plot.redraw(true, false);
    },
    destroy() {
      resize.disconnect();
      plot.destroy();
    },
  };
}

function paddedRange(min, max) {
  if (min === null || max === null || !Number.isFinite(min)) return [0, 1];
  const span = max - min || Math.abs(max) * 0.1 || 1;
  return [min - span * 0.15, max + span * 0.15];
}

/** Vibration: keep zone B fully in view, and more as the value climbs. */
export function zoneRange(boundaries) {
  return (u, min, max) => {
    const top = Math.max((max ?? 0) * 1.15, boundaries[1] * 1.1);
    return [0, top];
  };
}

function drawZones(u, overlay) {
  const bounds = overlay.zones;
  if (!bounds) return;
  const { ctx } = u;
  const { left, top, width, height } = u.bbox;
  const edges = [0, ...bounds, Infinity];
  ctx.save();
  ctx.font = FONT;
  ctx.textAlign = "left"; // left: the right edge is where planned work and predictions go
  for (let i = 0; i < 4; i++) {
    const y0 = Math.min(u.valToPos(edges[i], "y", true), top + height);
    const y1 = Math.max(edges[i + 1] === Infinity ? top : u.valToPos(edges[i + 1], "y", true), top);
    if (y0 <= top) break;
    ctx.fillStyle = ZONE_FILLS[i];
    ctx.fillRect(left, y1, width, y0 - y1);
    if (y0 - y1 >= 14 * devicePixelRatio) {
      // Labelled in the middle of the visible band; a sliver too thin for text stays unlabelled.
      ctx.fillStyle = "#333";
      ctx.textBaseline = "middle";
      ctx.fillText(`zone ${"ABCD"[i]}`, left + 4 * devicePixelRatio, (y0 + y1) / 2);
    }
  }
  ctx.restore();
}

function vline(u, ts, colour, dash) {
  const x = u.valToPos(ts, "x", true);
  const { top, height, left, width } = u.bbox;
  if (x < left || x > left + width) return null;
  const { ctx } = u;
  ctx.save();
  ctx.strokeStyle = colour;
  ctx.lineWidth = 1.5 * devicePixelRatio;
  ctx.setLineDash(dash.map((d) => d * devicePixelRatio));
  ctx.beginPath();
  ctx.moveTo(x, top);
  ctx.lineTo(x, top + height);
  ctx.stroke();
  ctx.restore();
  return x;
}

function span(u, from, to, fill) {
  const { top, height, left, width } = u.bbox;
  const x0 = Math.max(u.valToPos(from, "x", true), left);
  const x1 = Math.min(u.valToPos(to, "x", true), left + width);
  if (x1 <= x0) return null;
  u.ctx.fillStyle = fill;
  u.ctx.fillRect(x0, top, x1 - x0, height);
  return x0;
}

function label(u, x, text, row, colour) {
  if (x === null) return;
  const { ctx } = u;
  const right = u.bbox.left + u.bbox.width;
  ctx.save();
  ctx.font = FONT;
  ctx.fillStyle = colour;
  ctx.textBaseline = "alphabetic";
  // uPlot leaves its axis alignment on the shared context: set ours. Near the right edge the
  // text ends at the edge instead of running off the plot.
  const start = x + 3 * devicePixelRatio;
  const fits = start + ctx.measureText(text).width <= right;
  ctx.textAlign = fits ? "left" : "right";
  ctx.fillText(text, fits ? start : right - 2 * devicePixelRatio, u.bbox.top + (14 + 14 * row) * devicePixelRatio);
  ctx.restore();
}

function drawMarks(u, overlay) {
  let row = 0;
  for (const order of overlay.orders ?? []) {
    const x = span(u, order.start, order.end, ORDER_FILL);
    label(u, x, order.label, row++ % 3, "#0b4f80");
  }
  for (const failure of overlay.failures ?? []) {
    if (failure.low !== null && failure.high !== null) {
      span(u, failure.low, failure.high, "rgba(179,38,30,0.10)");
    }
    const x = vline(u, failure.ts, FAILURE_STROKE, [6, 4]);
    if (x !== null) label(u, x, failure.label, row++ % 3, FAILURE_STROKE);
    else if (failure.ts > u.scales.x.max) {
      // Beyond the chart: say when, at the right edge.
      label(u, u.bbox.left + u.bbox.width, `${failure.label} ${shortTime(failure.ts)} →`, row++ % 3, FAILURE_STROKE);
    }
  }
  // What happened: a failure (solid red) and the repair that ended it (solid green).
  for (const mark of overlay.happened ?? []) {
    const colour = mark.kind === "failure" ? FAILURE_STROKE : REPAIR_STROKE;
    const x = vline(u, mark.ts, colour, []);
    if (x !== null) label(u, x, mark.label, row++ % 3, colour);
  }
  if (overlay.now !== null && overlay.now !== undefined) {
    const x = vline(u, overlay.now, "#555", [2, 3]);
    if (x !== null) {
      // At the bottom: the top rows belong to the work and failure labels.
      const { ctx } = u;
      ctx.save();
      ctx.font = FONT;
      ctx.fillStyle = "#555";
      ctx.textAlign = "left";
      ctx.textBaseline = "bottom";
      ctx.fillText("now", x + 3 * devicePixelRatio, u.bbox.top + u.bbox.height - 2 * devicePixelRatio);
      ctx.restore();
    }
  }
}
