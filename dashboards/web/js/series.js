// A bounded time series for the charts: history from the telemetry endpoint, live readings
// appended (averaged into the same bucket width when the history was downsampled), points older
// than the window dropped, and gaps (nights, weekends, breakdowns) kept as gaps, not joined.

const MAX_POINTS = 3000;

export class SeriesBuffer {
  /**
   * @param {string[]} names   the value names, one chart series each
   * @param {number} windowS   how much simulated time to keep
   * @param {number|null} everyS  bucket width of the history (null = raw readings)
   * @param {number} gapS      a longer silence between two points is drawn as a gap
   */
  constructor(names, windowS, everyS, gapS) {
    this.names = names;
    this.windowS = windowS;
    this.everyS = everyS;
    this.gapS = gapS;
    this.ts = [];
    this.counts = [];
    this.values = names.map(() => []);
  }

  /** Points as {ts, n?, values: {name: value}} in time order (the endpoint's shape). */
  load(points) {
    for (const point of points) this.add(point.ts, point.values, point.n ?? 1, false);
  }

  /** A live reading {ts, name: value, ...}; older than the newest point is ignored. */
  addReading(reading) {
    const { ts, ...values } = reading;
    this.add(ts, values, 1, this.everyS !== null);
  }

  add(ts, values, n, merge) {
    const last = this.ts.length - 1;
    if (last >= 0 && ts <= this.ts[last]) {
      if (ts < this.ts[last] || !merge) return; // late or duplicate: history already has it
    }
    if (merge && last >= 0 && ts - this.ts[last] < this.everyS) {
      // Same bucket: running mean, weighted by how many readings the bucket already holds.
      const total = this.counts[last] + n;
      this.names.forEach((name, i) => {
        const value = values[name];
        if (value === undefined || value === null) return;
        const old = this.values[i][last];
        this.values[i][last] = old === null ? value : (old * this.counts[last] + value * n) / total;
      });
      this.counts[last] = total;
      return;
    }
    this.ts.push(ts);
    this.counts.push(n);
    this.names.forEach((name, i) => this.values[i].push(values[name] ?? null));
  }

  /** Drop what is older than the window before `nowTs`, and past the point cap. */
  trim(nowTs) {
    let drop = 0;
    while (drop < this.ts.length && this.ts[drop] < nowTs - this.windowS) drop++;
    drop = Math.max(drop, this.ts.length - MAX_POINTS);
    if (drop > 0) {
      this.ts.splice(0, drop);
      this.counts.splice(0, drop);
      for (const column of this.values) column.splice(0, drop);
    }
  }

  /** uPlot data: [xs, ys...], with a null row inserted in every gap longer than gapS. */
  toChartData(index = null) {
    const columns = index === null ? this.values : [this.values[index]];
    const xs = [];
    const ys = columns.map(() => []);
    for (let i = 0; i < this.ts.length; i++) {
      if (i > 0 && this.ts[i] - this.ts[i - 1] > this.gapS) {
        xs.push(this.ts[i - 1] + this.gapS / 2);
        for (const y of ys) y.push(null);
      }
      xs.push(this.ts[i]);
      columns.forEach((column, c) => ys[c].push(column[i]));
    }
    return [xs, ...ys];
  }

  get length() {
    return this.ts.length;
  }

  get newestTs() {
    return this.ts.length ? this.ts[this.ts.length - 1] : null;
  }
}

/** The bucket width that keeps a window under `targetPoints`, or null when raw readings fit. */
export function bucketFor(windowS, sampleS, targetPoints) {
  if (windowS / sampleS <= targetPoints) return null;
  return Math.ceil(windowS / targetPoints / 60) * 60; // whole minutes read better in a tooltip
}
