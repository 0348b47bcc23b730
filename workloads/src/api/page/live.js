// The live page: one card per product with a chart of mid price, spike probability, threshold
// and alerts, fed by /predictions/stream (Server-Sent Events), and the online quality of the
// predictions from /predictions/quality. No framework, no build step.
(() => {
  'use strict';

  // Each chart shows the last WINDOW_SECONDS of event time, at most MAX_POINTS points: bounded
  // memory and drawing cost however long the page stays open, and a replay's hours-long holes
  // do not squeeze the current burst into a corner.
  const WINDOW_SECONDS = 600;
  const MAX_POINTS = 3000;
  const CHART_HEIGHT = 300;
  const VERSION_REFRESH_MS = 10000;
  // Predictions are judged a minute after they are made; a few seconds' staleness is invisible.
  const QUALITY_REFRESH_MS = 5000;
  const COLORS = { midprice: '#2563eb', probability: '#d97706', threshold: '#9ca3af', alert: '#dc2626' };

  const productsEl = document.getElementById('products');
  const statusEl = document.getElementById('status');
  const template = document.getElementById('product-template');
  const products = new Map();
  // The latest /predictions/quality entries by product, for cards drawn after they arrived.
  let quality = new Map();
  let qualityDefinition = '';
  const QUALITY_PENDING = template.content.querySelector('.quality-numbers').textContent;
  let received = 0;
  let dropped = 0;
  let drawScheduled = false;

  // The page's own filter (`/?product_id=BTC-USD`) is passed on to the stream.
  const filter = new URLSearchParams(window.location.search).getAll('product_id');
  const query = filter.length ? '?' + filter.map((p) => 'product_id=' + encodeURIComponent(p)).join('&') : '';

  function setStatus(state, text) {
    statusEl.dataset.state = state;
    statusEl.textContent = text;
  }

  function showStreamStatus(state) {
    const lost = dropped ? ` · ${dropped} dropped (the page read too slowly)` : '';
    setStatus(state, `${state === 'live' ? 'live' : state} · ${received} predictions${lost}`);
  }

  async function loadVersion() {
    try {
      const response = await fetch('/version', { cache: 'no-store' });
      const version = await response.json();
      document.getElementById('model-name').textContent = version.model_name ?? 'not loaded';
      document.getElementById('model-variant').textContent = version.model_variant ?? '–';
      document.getElementById('model-version').textContent = version.model_version ?? '–';
      document.getElementById('model-threshold').textContent =
        typeof version.threshold === 'number' ? version.threshold.toFixed(3) : '–';
      // The baseline answers only because the ML model could not be loaded: say so, loudly.
      const fallback = document.getElementById('model-fallback');
      if (version.model_fallback) {
        fallback.textContent =
          `The baseline answers in place of the ML model (${version.model_fallback.reason}): ${version.model_fallback.detail}`;
        fallback.hidden = false;
      } else {
        fallback.hidden = true;
      }
    } catch (err) {
      document.getElementById('model-name').textContent = 'unavailable';
    }
  }

  function chartWidth(el) {
    return Math.max(320, el.clientWidth);
  }

  function makeChart(el) {
    const price = (u, v) => (v == null ? '–' : v.toFixed(2));
    const fraction = (u, v) => (v == null ? '–' : v.toFixed(3));
    const options = {
      width: chartWidth(el),
      height: CHART_HEIGHT,
      scales: {
        x: { time: true },
        // Around the data with a little room; a flat price gets ±0.05 % instead of a range from 0.
        price: {
          range: (u, min, max) => {
            if (min == null || max == null) {
              return [0, 1];
            }
            const pad = Math.max((max - min) * 0.1, Math.abs(max) * 0.0005);
            return [min - pad, max + pad];
          },
        },
        prob: { auto: false, range: [0, 1] },
      },
      series: [
        { label: 'event time (UTC)' },
        { label: 'mid price', scale: 'price', stroke: COLORS.midprice, width: 1.5, value: price },
        { label: 'P(spike)', scale: 'prob', stroke: COLORS.probability, width: 1, value: fraction },
        { label: 'threshold', scale: 'prob', stroke: COLORS.threshold, width: 1, dash: [6, 4], value: fraction },
        {
          label: 'alert',
          scale: 'prob',
          stroke: COLORS.alert,
          value: fraction,
          paths: () => null,
          points: { show: true, size: 9, width: 1, stroke: COLORS.alert, fill: COLORS.alert },
        },
      ],
      axes: [
        {},
        { scale: 'price', label: 'mid price', size: 80 },
        { scale: 'prob', side: 1, label: 'P(spike)', grid: { show: false } },
      ],
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
    };
    return new uPlot(options, [[], [], [], [], []], el);
  }

  function product(id) {
    let entry = products.get(id);
    if (entry) {
      return entry;
    }
    document.getElementById('waiting')?.remove();
    const card = template.content.firstElementChild.cloneNode(true);
    card.dataset.product = id;
    card.dataset.points = '0';
    card.dataset.alerts = '0';
    card.querySelector('h2').textContent = id;
    // Cards in product order, whatever order the products show up in.
    const next = [...productsEl.children].find((el) => el.dataset.product > id);
    productsEl.insertBefore(card, next ?? null);
    const chartEl = card.querySelector('.chart');
    entry = {
      card,
      chartEl,
      chart: makeChart(chartEl),
      data: { x: [], midprice: [], probability: [], threshold: [], alert: [] },
      predictions: 0,
      alerts: 0,
      last: null,
      dirty: false,
    };
    products.set(id, entry);
    showQuality(entry);
    return entry;
  }

  function onPrediction(p) {
    received += 1;
    const entry = product(p.product_id);
    entry.predictions += 1;
    entry.alerts += p.prediction === 1 ? 1 : 0;
    entry.last = p;
    const t = Date.parse(p.event_time) / 1000;
    const d = entry.data;
    // The x axis must ascend; a late prediction only counts in the totals.
    if (Number.isFinite(t) && (d.x.length === 0 || t >= d.x[d.x.length - 1])) {
      d.x.push(t);
      d.midprice.push(typeof p.midprice === 'number' ? p.midprice : null);
      d.probability.push(p.probability);
      d.threshold.push(p.threshold);
      d.alert.push(p.prediction === 1 ? p.probability : null);
      let excess = Math.max(0, d.x.length - MAX_POINTS);
      while (excess < d.x.length && d.x[excess] < t - WINDOW_SECONDS) {
        excess += 1;
      }
      if (excess > 0) {
        for (const series of Object.values(d)) {
          series.splice(0, excess);
        }
      }
    }
    entry.dirty = true;
    scheduleDraw();
  }

  function scheduleDraw() {
    if (!drawScheduled) {
      drawScheduled = true;
      window.requestAnimationFrame(draw);
    }
  }

  // At replay speed predictions arrive by the thousand per second: redraw once per frame.
  function draw() {
    drawScheduled = false;
    for (const entry of products.values()) {
      if (!entry.dirty) {
        continue;
      }
      entry.dirty = false;
      const d = entry.data;
      entry.chart.setData([d.x, d.midprice, d.probability, d.threshold, d.alert]);
      const p = entry.last;
      const card = entry.card;
      const alertsDrawn = d.alert.reduce((n, v) => n + (v === null ? 0 : 1), 0);
      card.dataset.points = String(d.x.length);
      card.dataset.alerts = String(alertsDrawn);
      card.querySelector('.midprice').textContent = typeof p.midprice === 'number' ? p.midprice.toFixed(2) : '–';
      const probability = card.querySelector('.probability');
      probability.textContent = p.probability.toFixed(3);
      probability.classList.toggle('alert', p.prediction === 1);
      const alerts = card.querySelector('.alerts');
      alerts.textContent = `${entry.alerts} of ${entry.predictions}`;
      alerts.classList.toggle('alert', entry.alerts > 0);
      card.querySelector('.alert-rate').textContent = `${((100 * entry.alerts) / entry.predictions).toFixed(1)} %`;
      card.querySelector('.event-time').textContent = p.event_time;
    }
    showStreamStatus(statusEl.dataset.state === 'error' ? 'reconnecting' : statusEl.dataset.state);
  }

  const fraction2 = (v) => (v == null ? '–' : v.toFixed(2));

  // One line per model variant judged in the last hour (two after a variant switch).
  function showQuality(entry) {
    const el = entry.card.querySelector('.quality-numbers');
    const judged = quality.get(entry.card.dataset.product) ?? [];
    el.parentElement.title = qualityDefinition;
    if (judged.length === 0) {
      el.textContent = QUALITY_PENDING;
      return;
    }
    const lines = judged.map((q) => {
      const line = document.createElement('span');
      line.className = 'quality-line';
      line.dataset.variant = q.variant;
      line.dataset.judged = String(q.judged);
      const variant = judged.length > 1 ? `${q.variant}: ` : '';
      line.textContent =
        q.judged === 0
          ? `${variant}nothing judged in the last hour`
          : `${variant}precision ${fraction2(q.precision)} · recall ${fraction2(q.recall)} · ` +
            `chance ${fraction2(q.positive_rate)} · Brier ${q.brier == null ? '–' : q.brier.toFixed(3)} · ` +
            `judged ${q.judged.toLocaleString('en-US')} in the last hour`;
      return line;
    });
    el.replaceChildren(...lines);
  }

  async function loadQuality() {
    try {
      const response = await fetch('/predictions/quality' + query, { cache: 'no-store' });
      if (!response.ok) {
        return; // No source (the status line says why) or a product not seen yet.
      }
      const body = await response.json();
      qualityDefinition = body.definition;
      quality = new Map();
      for (const q of body.quality) {
        quality.set(q.product_id, [...(quality.get(q.product_id) ?? []), q]);
      }
      products.forEach(showQuality);
    } catch (err) {
      // The stream's own error handling reports an unreachable server.
    }
  }

  async function explainFailure() {
    // EventSource does not expose the error body; the same check on /predictions/latest does.
    try {
      const response = await fetch('/predictions/latest' + query, { cache: 'no-store' });
      if (!response.ok) {
        const body = await response.json();
        setStatus('error', body?.error?.reason ?? `HTTP ${response.status}`);
      }
    } catch (err) {
      setStatus('error', 'server unreachable');
    }
  }

  function connect() {
    const source = new EventSource('/predictions/stream' + query);
    source.addEventListener('open', () => showStreamStatus('live'));
    source.addEventListener('prediction', (event) => onPrediction(JSON.parse(event.data)));
    source.addEventListener('dropped', (event) => {
      dropped += JSON.parse(event.data).dropped;
      showStreamStatus('live');
    });
    source.addEventListener('error', () => {
      if (source.readyState === EventSource.CLOSED) {
        // Refused (e.g. no prediction source configured): the browser does not retry.
        explainFailure();
      } else {
        setStatus('connecting', 'reconnecting…');
      }
    });
  }

  window.addEventListener('resize', () => {
    for (const entry of products.values()) {
      entry.chart.setSize({ width: chartWidth(entry.chartEl), height: CHART_HEIGHT });
    }
  });

  // The latest prediction of each product first, so that a page opened after a replay ended
  // still shows where each market stood; then everything newer from the stream.
  async function seed() {
    try {
      const response = await fetch('/predictions/latest' + query, { cache: 'no-store' });
      if (response.ok) {
        const body = await response.json();
        body.predictions.forEach(onPrediction);
      }
    } catch (err) {
      // The stream's own error handling reports an unreachable server.
    }
  }

  loadVersion();
  window.setInterval(loadVersion, VERSION_REFRESH_MS);
  seed().then(() => {
    connect();
    loadQuality();
    window.setInterval(loadQuality, QUALITY_REFRESH_MS);
  });
})();
