// The overview page (#/overview): the account's throughput, queue depth and failures per minute,
// from GET /v1/customer/stats, drawn as small SVG charts and read again every 10 s.
import { h } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import htm from 'htm';
import { api } from './api.js';

const html = htm.bind(h);
const REFRESH_MS = 10_000;
const WINDOWS = [15, 60, 360, 1440];
const CHART = { width: 600, height: 120 };


const clock = (iso) => new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
const sum = (buckets, field) => buckets.reduce((total, bucket) => total + bucket[field], 0);

/**
 * One chart: a series per entry of `series` ({field, label, colour}), as bars side by side
 * (counts per minute) or as a stepped area (a level such as the queue's depth).
 */
function Chart({ testid, title, buckets, series, kind }) {
  const { width, height } = CHART;
  const top = Math.max(1, ...buckets.flatMap((bucket) => series.map((line) => bucket[line.field])));
  const step = width / Math.max(1, buckets.length);
  const y = (value) => height - (value / top) * (height - 4);
  let marks;
  if (kind === 'area') {
    const line = series[0];
    const points = buckets.flatMap((bucket, index) => [`${index * step},${y(bucket[line.field])}`, `${(index + 1) * step},${y(bucket[line.field])}`]);
    marks = html`<polygon points=${`0,${height} ${points.join(' ')} ${width},${height}`} fill=${line.colour} fill-opacity="0.25" stroke=${line.colour} stroke-width="1.5" vector-effect="non-scaling-stroke" />`;
  } else {
    const barWidth = step / series.length;
    marks = buckets.map((bucket, index) => series.map((line, which) => {
      const value = bucket[line.field];
      return value > 0 && html`<rect x=${index * step + which * barWidth} y=${y(value)} width=${Math.max(barWidth * 0.85, 0.5)} height=${height - y(value)} fill=${line.colour}><title>${`${clock(bucket.at)} ${line.label}: ${value}`}</title></rect>`;
    }));
  }
  return html`<section class="overview-chart" data-testid=${testid}>
    <h2>${title}</h2>
    <div class="overview-legend">${series.map((line) => html`<span><i style=${`background:${line.colour}`}></i>${line.label}: <strong data-testid=${`${testid}-${line.field}`}>${kind === 'area' ? (buckets.at(-1)?.[line.field] ?? 0) : sum(buckets, line.field)}</strong>${kind === 'area' ? ' now' : ' in all'}</span>`)}</div>
    <svg viewBox=${`0 0 ${width} ${height}`} preserveAspectRatio="none" role="img" aria-label=${title}>
      <line x1="0" y1=${height - 0.5} x2=${width} y2=${height - 0.5} stroke="#e4e7ec" />
      ${marks}
    </svg>
    <div class="overview-axis"><span>${buckets[0] ? clock(buckets[0].at) : ''}</span><span>peak ${top}</span><span>${buckets.length ? clock(buckets.at(-1).at) : ''}</span></div>
  </section>`;
}

const STYLE = `
.overview-head { display: flex; flex-wrap: wrap; gap: 0.5rem 1.5rem; align-items: end; }
.overview-now { display: flex; flex-wrap: wrap; gap: 0.5rem 1.5rem; margin: 0; }
.overview-now div { display: flex; flex-direction: column; }
.overview-now dt { color: var(--muted); font-size: 0.85rem; }
.overview-now dd { margin: 0; font-size: 1.4rem; font-weight: 600; }
.overview-charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 20rem), 1fr)); gap: 1rem; }
.overview-chart { margin: 0; min-width: 0; }
.overview-chart svg { display: block; width: 100%; height: 7.5rem; }
.overview-legend { display: flex; flex-wrap: wrap; gap: 0.2rem 1rem; font-size: 0.85rem; color: var(--muted); margin-bottom: 0.3rem; }
.overview-legend i { display: inline-block; width: 0.7rem; height: 0.7rem; border-radius: 2px; margin-right: 0.3rem; vertical-align: -1px; }
.overview-axis { display: flex; justify-content: space-between; font-size: 0.75rem; color: var(--muted); }
`;

export function Overview() {
  const [minutes, setMinutes] = useState(60);
  const [stats, setStats] = useState(null);
  const [error, setError] = useState('');
  const load = useCallback(() => api('GET', `/v1/customer/stats?minutes=${minutes}`).then((data) => ((setStats(data), setError(''))), (failure) => setError(failure.message)), [minutes]);
  useEffect(() => {
    void load();
    const timer = setInterval(load, REFRESH_MS);
    return () => clearInterval(timer);
  }, [load]);
  const buckets = stats?.buckets || [];
  return html`<main data-testid="overview"><style>${STYLE}</style>
    <section class="overview-head">
      <div><h1>Overview</h1><p class="muted">Your account's tasks and jobs, per minute; read again every 10 s.</p></div>
      <label>Window <select data-testid="overview-minutes" value=${minutes} onChange=${(event) => setMinutes(Number(event.target.value))}>
        ${WINDOWS.map((value) => html`<option value=${value}>${value < 60 ? `${value} minutes` : value === 60 ? 'last hour' : `${value / 60} hours`}</option>`)}
      </select></label>
      <dl class="overview-now" data-testid="overview-now">
        <div><dt>Waiting</dt><dd data-testid="now-queued">${stats?.now.queued ?? '–'}</dd></div>
        <div><dt>Running</dt><dd data-testid="now-running">${stats?.now.running ?? '–'}</dd></div>
        <div><dt>Workers</dt><dd data-testid="now-workers">${stats?.now.workers ?? '–'}</dd></div>
      </dl>
    </section>
    ${error && html`<p class="error" data-testid="overview-error">${error}</p>`}
    ${stats && html`<div class="overview-charts">
      <${Chart} testid="chart-throughput" title="Throughput (tasks done per minute)" kind="bars" buckets=${buckets} series=${[{ field: 'tasksDone', label: 'tasks done', colour: '#3b5bdb' }]} />
      <${Chart} testid="chart-queue" title="Queue depth (tasks waiting)" kind="area" buckets=${buckets} series=${[{ field: 'queued', label: 'waiting', colour: '#e8590c' }]} />
      <${Chart} testid="chart-failures" title="Failures per minute" kind="bars" buckets=${buckets} series=${[{ field: 'tasksFailed', label: 'tasks failed', colour: '#fa5252' }, { field: 'jobsFailed', label: 'jobs failed', colour: '#862e9c' }]} />
    </div>`}
  </main>`;
}
