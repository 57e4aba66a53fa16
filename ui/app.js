// Tessera's dashboard: Preact + htm, no build step. The API key is kept in this tab's session
// storage and sent in the Authorization header; live views read the API's event streams with
// fetch (EventSource cannot send the header).
import { h, render } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import htm from 'htm';
import { KEY, api } from './api.js';
import { Overview } from './overview.js';

const html = htm.bind(h);
const FINAL = new Set(['JOB_STATE_COMPLETE', 'JOB_STATE_FAILED']);
const LIFECYCLE = ['NEW', 'STARTED', 'UPLOADING', 'PARTITIONING', 'PARTITIONED', 'TASKS_COMPLETED', 'MERGING', 'MERGED', 'DOWNLOADING', 'COMPLETE'];
const short = (state) => (state || '').replace(/^JOB_STATE_/, '');
const when = (iso) => (iso ? new Date(iso).toLocaleString() : '');
const RUNNING = (state) => !FINAL.has(state) && state !== 'JOB_STATE_NEW';
/** 75 s → "1m 15s"; under a minute with one decimal. */
const seconds = (s) => (s == null ? '' : s < 60 ? `${s.toFixed(1)}s` : s < 3600 ? `${Math.floor(s / 60)}m ${Math.round(s % 60)}s` : `${Math.floor(s / 3600)}h ${Math.round((s % 3600) / 60)}m`);
/** How long a job has run: from submission to its end, or to now while it runs. */
const ranFor = (job, now) => {
  const start = job.submittedAt || job.stateTimestamps?.JOB_STATE_STARTED;
  if (!start) return null;
  const end = FINAL.has(job.state) ? job.endedAt || job.stateTimestamps?.[job.state] : null;
  return Math.max(0, ((end ? Date.parse(end) : now) - Date.parse(start)) / 1000);
};
const bytes = (n) => (n == null ? '' : n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(2)} GiB` : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${Math.round(n / 1024)} KiB`);

// ---- API -------------------------------------------------------------------------------------

/** Reads a text/event-stream until it ends or `signal` aborts; calls onEvent(event, data). */
async function follow(path, onEvent, signal) {
  const response = await fetch(path, { headers: { authorization: `Bearer ${sessionStorage.getItem(KEY) || ''}`, accept: 'text/event-stream' }, signal });
  if (!response.ok || !response.body) throw new Error(`${path}: HTTP ${response.status}`);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = 'message';
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data += line.slice(5).trim();
      }
      if (data) onEvent(event, JSON.parse(data).result.data);
    }
  }
}

function useRoute() {
  const [hash, setHash] = useState(location.hash || '#/jobs');
  useEffect(() => {
    const changed = () => setHash(location.hash || '#/jobs');
    addEventListener('hashchange', changed);
    return () => removeEventListener('hashchange', changed);
  }, []);
  return hash.slice(1).split('?')[0].split('/').filter(Boolean);
}

function useLoad(load, deps) {
  const [state, setState] = useState({ data: null, error: null });
  const reload = useCallback(() => load().then((data) => setState({ data, error: null }), (error) => setState((old) => ({ data: old.data, error: error.message }))), deps);
  useEffect(() => void reload(), [reload]);
  return [state, reload];
}

/** The time now, moving every `ms` while `active` (a running job's elapsed time). */
function useNow(active, ms = 1000) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!active) return undefined;
    const timer = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(timer);
  }, [active, ms]);
  return now;
}

function StateBadge({ state, testid }) {
  const name = short(state);
  return html`<span class=${`state ${name}${RUNNING(state) ? ' running' : ''}`} data-testid=${testid}>${name}</span>`;
}

// ---- pages -----------------------------------------------------------------------------------

function SignIn({ onSignedIn }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState('');
  const submit = async (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, key.trim());
    try {
      const user = await api('GET', '/v1/auth/user');
      onSignedIn(user.accountId);
      location.hash = '#/jobs';
    } catch (failure) {
      sessionStorage.removeItem(KEY);
      setError(failure.message);
    }
  };
  return html`<main><section>
    <h1>Sign in to Tessera</h1>
    <p class="muted">Use an API key (tessera up prints the first one; tessera key create makes more). It is kept only in this browser tab.</p>
    <form class="row" onSubmit=${submit}>
      <label>API key <input data-testid="api-key" type="password" autocomplete="off" size="48" value=${key} onInput=${(e) => setKey(e.target.value)} /></label>
      <button data-testid="sign-in" type="submit" disabled=${!key.trim()}>Sign in</button>
    </form>
    ${error && html`<p class="error" data-testid="sign-in-error">${error}</p>`}
  </section></main>`;
}

function NewJob({ templates }) {
  const [templateId, setTemplateId] = useState('word-count');
  const [url, setUrl] = useState('');
  const [params, setParams] = useState('');
  const [file, setFile] = useState(null);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const start = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError('');
    try {
      const body = { templateId };
      if (file) body.dataSource = { dataSourceDescriptor: 'file' };
      else if (url.trim()) body.dataSource = { dataSourceDescriptor: 'url', params: { '@type': 'type.googleapis.com/bytenite.data_source.HttpDataSource', url: url.trim() } };
      if (params.trim()) body.params = JSON.parse(params);
      const { job } = await api('POST', '/v1/customer/jobs', body);
      if (file) {
        // The file goes straight to the job's signed upload link (no key needed), then the job is told.
        const uploaded = await fetch(job.dataSource.params.tempUrl, { method: 'PUT', body: file, headers: { 'content-disposition': `attachment; filename="${file.name.replace(/[^\x20-\x7e]|["\\]/g, '_')}"` } });
        if (!uploaded.ok) throw new Error((await uploaded.json().catch(() => ({}))).message || `uploading ${file.name}: HTTP ${uploaded.status}`);
        await api('PATCH', `/v1/customer/jobs/${job.id}/uploadcompleted`);
      }
      await api('POST', `/v1/customer/jobs/${job.id}/run`, {});
      location.hash = `#/jobs/${job.id}`;
    } catch (failure) {
      setError(failure.message);
    } finally {
      setBusy(false);
    }
  };
  return html`<section><h2>New job</h2>
    <form class="row" onSubmit=${start}>
      <label>Template <select data-testid="new-template" value=${templateId} onChange=${(e) => setTemplateId(e.target.value)}>
        ${templates.map((template) => html`<option value=${template.id}>${template.id}</option>`)}
      </select></label>
      <label>Input URL (empty: the template's default) <input data-testid="new-url" size="36" value=${url} disabled=${Boolean(file)} onInput=${(e) => setUrl(e.target.value)} /></label>
      <label>or a file <input data-testid="new-file" type="file" onChange=${(e) => setFile(e.target.files?.[0] || null)} /></label>
      <label>Params (JSON) <textarea data-testid="new-params" rows="1" value=${params} onInput=${(e) => setParams(e.target.value)} placeholder='{"partitioner": {"chunks": 4}}'></textarea></label>
      <button data-testid="start-job" type="submit" disabled=${busy}>Start job</button>
    </form>
    ${error && html`<p class="error">${error}</p>`}
  </section>`;
}

function Jobs() {
  const [filters, setFilters] = useState({ state: '', templateId: '', name: '' });
  const [offset, setOffset] = useState(0);
  const limit = 20;
  const [templates] = useLoad(() => api('GET', '/v1/customer/jobs/templates?pagination.limit=1000'), []);
  const [jobs, reload] = useLoad(() => {
    const list = [];
    if (filters.state) list.push({ field: 'state', condition: 'FILTER_CONDITION_EQ', value: filters.state });
    if (filters.templateId) list.push({ field: 'templateId', condition: 'FILTER_CONDITION_EQ', value: filters.templateId });
    if (filters.name) list.push({ field: 'name', condition: 'FILTER_CONDITION_LIKE', value: `%${filters.name}%` });
    return api('POST', '/v1/customer/jobs/filter', { filters: list, pagination: { limit, offset }, orderBy: 'createdAt desc' });
  }, [filters, offset]);
  useEffect(() => {
    const timer = setInterval(reload, 3000);
    return () => clearInterval(timer);
  }, [reload]);
  const set = (field) => (event) => {
    setOffset(0);
    setFilters({ ...filters, [field]: event.target.value });
  };
  const templateList = templates.data?.data || [];
  const page = jobs.data?.pagination;
  const now = useNow((jobs.data?.data || []).some((job) => RUNNING(job.state)));
  return html`<main>
    <${NewJob} templates=${templateList} />
    <section>
      <h2>Jobs</h2>
      <div class="row">
        <label>State <select data-testid="filter-state" value=${filters.state} onChange=${set('state')}>
          <option value="">any</option>${[...LIFECYCLE, 'FAILED'].map((state) => html`<option value=${`JOB_STATE_${state}`}>${state}</option>`)}
        </select></label>
        <label>Template <select data-testid="filter-template" value=${filters.templateId} onChange=${set('templateId')}>
          <option value="">any</option>${templateList.map((template) => html`<option value=${template.id}>${template.id}</option>`)}
        </select></label>
        <label>Name contains <input data-testid="filter-name" value=${filters.name} onInput=${set('name')} /></label>
      </div>
      ${jobs.error && html`<p class="error">${jobs.error}</p>`}
      <div class="scroll"><table data-testid="jobs-table">
        <thead><tr><th>Job</th><th class="wide">Template</th><th>State</th><th>Progress</th><th>Duration</th><th class="wide">Error</th><th class="wide">Created</th></tr></thead>
        <tbody>${(jobs.data?.data || []).map((job) => {
          const total = job.numChunks || 0;
          const done = job.usage?.tasksDone ?? 0;
          return html`<tr>
            <td class="cut"><a href=${`#/jobs/${job.id}`} title=${job.id}>${job.name || job.id}</a></td><td class="wide">${job.templateId}</td>
            <td><${StateBadge} state=${job.state} /></td>
            <td><span class="minibar"><span style=${`width: ${total ? Math.round((100 * done) / total) : job.state === 'JOB_STATE_COMPLETE' ? 100 : 0}%`}></span></span> ${done}/${total}</td>
            <td data-testid="job-duration">${seconds(ranFor(job, now))}</td>
            <td class="wide cut error-cell" title=${job.errorMessage}>${job.errorMessage}</td><td class="wide">${when(job.createdAt)}</td></tr>`;
        })}</tbody>
      </table></div>
      ${page && html`<div class="row"><button class="secondary" disabled=${offset === 0} onClick=${() => setOffset(Math.max(0, offset - limit))}>Previous</button>
        <span class="muted">${page.total === 0 ? 'no jobs' : `${offset + 1}–${offset + (jobs.data.data.length)} of ${page.total}`}</span>
        <button class="secondary" data-testid="next-page" disabled=${!page.hasNext} onClick=${() => setOffset(offset + limit)}>Next</button></div>`}
    </section>
  </main>`;
}

function Timeline({ job }) {
  const stamps = job.stateTimestamps || {};
  const states = job.state === 'JOB_STATE_FAILED' ? [...LIFECYCLE.filter((state) => stamps[`JOB_STATE_${state}`]), 'FAILED'] : LIFECYCLE;
  return html`<ul class="timeline" data-testid="timeline">${states.map((state) => {
    const at = stamps[`JOB_STATE_${state}`];
    return html`<li class=${at ? '' : 'todo'}><span class=${`state ${state}`}>${state}</span> ${at ? new Date(at).toLocaleTimeString() : ''}</li>`;
  })}</ul>`;
}

/** The fields of a job that a re-run copies: the same template, params, input and config. */
function rerunBody(job) {
  const { taskTimeout, jobTimeout, isTestJob, maxTaskRetries, workerPool } = job.config || {};
  const config = Object.fromEntries(Object.entries({ taskTimeout, jobTimeout, isTestJob, maxTaskRetries, workerPool }).filter(([, value]) => value !== undefined));
  return {
    templateId: job.templateId,
    name: job.name ? `${job.name} (re-run)` : `re-run of ${job.id}`,
    description: job.description,
    params: job.params,
    dataSource: job.dataSource,
    dataDestination: job.dataDestination,
    config,
    priority: job.priority,
    regions: job.regions,
  };
}

const TASK_COLOURS = { succeeded: '#2b8a3e', failed: '#c92a2a', leased: '#3b5bdb', cancelled: '#868e96', cancelling: '#868e96', queued: '#ced4da' };

/**
 * Every task of the job on one time axis, one row per task (several per pixel row past the
 * canvas's height), drawn on a canvas so that 10,000 tasks stay fast; hovering names the task.
 */
function Waterfall({ tasks, job, now }) {
  const canvas = useRef(null);
  const [hover, setHover] = useState('');
  const started = tasks.filter((task) => task.startedAt);
  const begin = Math.min(...started.map((task) => Date.parse(task.startedAt)), Date.parse(job.submittedAt || job.createdAt));
  const end = Math.max(begin + 1, ...started.map((task) => (task.finishedAt ? Date.parse(task.finishedAt) : now)));
  const rows = [...started].sort((left, right) => Date.parse(left.startedAt) - Date.parse(right.startedAt));
  const height = Math.max(40, Math.min(rows.length * 4, 320));
  useEffect(() => {
    const element = canvas.current;
    if (!element) return;
    const width = element.clientWidth || 600;
    const scale = window.devicePixelRatio || 1;
    element.width = width * scale;
    element.height = height * scale;
    const context = element.getContext('2d');
    context.scale(scale, scale);
    context.clearRect(0, 0, width, height);
    const rowHeight = height / Math.max(rows.length, 1);
    rows.forEach((task, index) => {
      const from = ((Date.parse(task.startedAt) - begin) / (end - begin)) * width;
      const to = (((task.finishedAt ? Date.parse(task.finishedAt) : now) - begin) / (end - begin)) * width;
      context.fillStyle = TASK_COLOURS[task.state] || '#3b5bdb';
      context.fillRect(from, index * rowHeight, Math.max(1, to - from), Math.max(1, rowHeight - (rowHeight > 3 ? 1 : 0)));
    });
  }, [rows.length, begin, end, height, tasks]);
  const describe = (event) => {
    const box = event.currentTarget.getBoundingClientRect();
    const task = rows[Math.floor(((event.clientY - box.top) / box.height) * rows.length)];
    if (!task) return setHover('');
    const took = ((task.finishedAt ? Date.parse(task.finishedAt) : now) - Date.parse(task.startedAt)) / 1000;
    setHover(`${task.service} #${task.chunkIndex} · ${task.state} · attempt ${task.attempt} · ${seconds(took)}${task.worker ? ` · ${task.worker}` : ''}`);
  };
  if (rows.length === 0) return html`<p class="muted">No task has started yet.</p>`;
  return html`<div>
    <canvas ref=${canvas} class="waterfall" data-testid="waterfall" data-tasks=${rows.length} style=${`height: ${height}px`} onMouseMove=${describe} onMouseLeave=${() => setHover('')}></canvas>
    <div class="row muted"><span>${new Date(begin).toLocaleTimeString()}</span><span data-testid="waterfall-hover" class="grow">${hover || `${rows.length} tasks over ${seconds((end - begin) / 1000)}`}</span><span>${new Date(end).toLocaleTimeString()}</span></div>
  </div>`;
}

const LEVELS = ['DEBUG', 'INFO', 'WARN', 'ERROR'];
const LEVEL_RANK = { TRACE: 0, DEBUG: 0, INFO: 1, UNKNOWN: 1, WARN: 2, WARNING: 2, ERROR: 3, FATAL: 3, PANIC: 3 };

/** A job's log lines as they arrive (the follow stream), in time order, with search and a level floor. */
function Logs({ jobId, taskFilter, clearTask }) {
  const [lines, setLines] = useState([]);
  const [search, setSearch] = useState('');
  const [level, setLevel] = useState('DEBUG');
  const [tail, setTail] = useState(true);
  const box = useRef(null);
  useEffect(() => {
    const controller = new AbortController();
    const pending = [];
    let timer = null;
    // Lines come in bursts: they are added at most every 200 ms, at most 5,000 kept.
    const flush = () => {
      timer = null;
      const batch = pending.splice(0);
      setLines((old) => [...old, ...batch].sort((left, right) => left.timestamp.localeCompare(right.timestamp) || left.id - right.id).slice(-5000));
    };
    follow(`/v1/customer/jobs/${jobId}/logs?follow=true`, (event, data) => {
      if (event !== 'log') return;
      pending.push(data);
      timer ??= setTimeout(flush, 200);
    }, controller.signal).catch(() => {});
    return () => {
      controller.abort();
      if (timer) clearTimeout(timer);
    };
  }, [jobId]);
  useEffect(() => {
    if (tail && box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [lines, tail]);
  const needle = search.trim().toLowerCase();
  const shown = lines.filter((line) => (!taskFilter || line.taskId === taskFilter) && (LEVEL_RANK[line.level] ?? 1) >= LEVEL_RANK[level] && (!needle || line.log.toLowerCase().includes(needle)));
  return html`<section><h2>Logs ${taskFilter && html`<span class="muted">of task ${taskFilter}</span> <button class="secondary" onClick=${clearTask}>all</button>`}</h2>
    <div class="row">
      <label>Search <input data-testid="log-search" value=${search} onInput=${(event) => setSearch(event.target.value)} placeholder="text in the line" /></label>
      <label>At least <select data-testid="log-level" value=${level} onChange=${(event) => setLevel(event.target.value)}>${LEVELS.map((name) => html`<option value=${name}>${name}</option>`)}</select></label>
      <label class="check"><input type="checkbox" checked=${tail} onChange=${(event) => setTail(event.target.checked)} /> follow the end</label>
      <span class="muted">${shown.length} of ${lines.length} lines</span>
    </div>
    <pre class="logs" data-testid="logs" ref=${box}>${shown.map((line) => html`<div class=${`lvl-${line.level}`}>${`${line.timestamp.slice(11, 23)} ${line.service}${line.service === 'TASKRUNNER' ? ` #${line.chunkIndex}` : ''} ${line.level} ${line.log}`}</div>`)}${shown.length === 0 ? 'no log lines' : ''}</pre>
  </section>`;
}

const TASK_PAGE = 100;

function JobPage({ jobId }) {
  const [job, setJob] = useState(null);
  const [progress, setProgress] = useState(null);
  const [tasks, setTasks] = useState([]);
  const [results, setResults] = useState([]);
  const [logTask, setLogTask] = useState('');
  const [taskOffset, setTaskOffset] = useState(0);
  const [error, setError] = useState('');
  const refreshTimer = useRef(null);
  const busy = useRef(false);
  const again = useRef(false);
  const now = useNow(job ? !FINAL.has(job.state) : false);

  // One refresh at a time (job, every task, results): two overlapping ones could answer out of
  // order and an older tasks list replace a newer one. One asked for while another runs makes it
  // go round once more. The page is made anew for each job (App keys it by id), so nothing of a
  // job seen before can show here.
  const refresh = useCallback(async () => {
    if (busy.current) {
      again.current = true;
      return;
    }
    busy.current = true;
    try {
      do {
        again.current = false;
        const { job: current } = await api('GET', `/v1/customer/jobs/${jobId}`);
        setJob(current);
        const all = [];
        for (let offset = 0; offset < 100_000; offset += 10_000) {
          const page = (await api('GET', `/v1/customer/jobs/${jobId}/tasks?pagination.limit=10000&pagination.offset=${offset}`)).data;
          all.push(...page);
          if (page.length < 10_000) break;
        }
        setTasks(all);
        if (current.state === 'JOB_STATE_COMPLETE') setResults((await api('GET', `/v1/customer/jobs/${jobId}/results`)).results);
      } while (again.current);
    } catch (failure) {
      setError(failure.message);
    } finally {
      busy.current = false;
    }
  }, [jobId]);

  useEffect(() => {
    const controller = new AbortController();
    void refresh();
    // Live: every state change and progress report pushes an update; the page re-reads (at most
    // every 500 ms). New log lines (`logs`) are the Logs view's own stream's business.
    const later = () => {
      if (refreshTimer.current) return;
      refreshTimer.current = setTimeout(() => ((refreshTimer.current = null), void refresh()), 500);
    };
    follow(`/v1/customer/jobs/${jobId}/events`, (event, data) => {
      if (event === 'logs') return;
      if (event === 'progress') setProgress(data);
      if (event === 'state') setJob((old) => (old ? { ...old, state: data.state, stateTimestamps: { ...old.stateTimestamps, [data.state]: data.at } } : old));
      later();
    }, controller.signal).catch(() => {}).finally(() => void refresh());
    return () => {
      controller.abort();
      if (refreshTimer.current) clearTimeout(refreshTimer.current);
    };
  }, [jobId, refresh]);

  if (error && !job) return html`<main><section><p class="error">${error}</p><a href="#/jobs">Back to jobs</a></section></main>`;
  if (!job) return html`<main><p class="muted">Loading…</p></main>`;
  const done = progress?.tasksDone ?? job.usage?.tasksDone ?? 0;
  const total = progress?.tasksTotal ?? job.numChunks ?? 0;
  const act = (work) => async () => {
    try {
      await work();
    } catch (failure) {
      setError(failure.message);
    }
  };
  const abort = act(async () => {
    await api('POST', `/v1/customer/jobs/${jobId}/abort`);
    await refresh();
  });
  // A file job's upload cannot be copied: its input would have to be sent again.
  const rerunnable = job.dataSource?.dataSourceDescriptor !== 'file';
  const rerun = act(async () => {
    const { job: copy } = await api('POST', '/v1/customer/jobs', rerunBody(job));
    await api('POST', `/v1/customer/jobs/${copy.id}/run`, {});
    location.hash = `#/jobs/${copy.id}`;
  });
  const pageOfTasks = tasks.slice(taskOffset, taskOffset + TASK_PAGE);
  return html`<main>
    <section>
      <h1>${job.name || 'Job'} <span class="muted">${job.id}</span></h1>
      <div class="row"><${StateBadge} state=${job.state} testid="job-state" />
        <span class="muted" data-testid="elapsed">${RUNNING(job.state) ? `running for ${seconds(ranFor(job, now))}` : ranFor(job, now) != null ? `ran ${seconds(ranFor(job, now))}` : ''}</span>
        <span class="muted">template ${job.templateId}</span>
        ${!FINAL.has(job.state) && html`<button class="danger" data-testid="abort" onClick=${abort}>Abort</button>`}
        <button class="secondary" data-testid="rerun" disabled=${!rerunnable} title=${rerunnable ? 'a new job with the same template, params, input and config' : 'a file job\'s upload cannot be copied: start a new job with the file'} onClick=${rerun}>Re-run</button></div>
      <div class="bar"><div style=${`width: ${total ? Math.round((100 * done) / total) : FINAL.has(job.state) ? 100 : 0}%`}></div></div>
      <p data-testid="progress">${done}/${total} tasks done${progress?.tasksFailed ? `, ${progress.tasksFailed} failed attempts` : ''}</p>
      <${Timeline} job=${job} />
      ${(job.errorMessage || error) && html`<p class="error" data-testid="job-error">${job.errorMessage || error}</p>`}
      <p class="muted">CPU ${job.usage?.cpuSeconds ?? 0} s · peak ${bytes(Number(job.usage?.peakMemoryBytes ?? 0))} · ${Number(job.usage?.units ?? 0).toPrecision(3)} vCPU·GiB·h · cost ${job.paymentAmount}</p>
    </section>
    ${results.length > 0 && html`<section><h2>Results</h2><ul data-testid="results">${results.map((result) => html`<li><a href=${result.link} target="_blank" rel="noopener">${result.name}</a></li>`)}</ul></section>`}
    <section><h2>Tasks over time</h2><${Waterfall} tasks=${tasks} job=${job} now=${now} /></section>
    <section><h2>Tasks</h2><div class="scroll"><table data-testid="tasks-table">
      <thead><tr><th>Stage</th><th>Chunk</th><th>State</th><th>Attempts</th><th>Worker</th><th>Duration</th><th class="wide">CPU</th><th class="wide">Memory</th><th>Logs</th></tr></thead>
      <tbody>${pageOfTasks.map((task) => html`<tr>
        <td>${task.service}</td><td>${task.chunkIndex}</td><td title=${task.error || ''}>${task.state}</td><td>${task.attempt}</td><td class="cut" title=${task.worker || ''}>${task.worker || ''}</td>
        <td>${task.wallSeconds == null ? '' : `${task.wallSeconds.toFixed(2)} s`}</td><td class="wide">${task.cpuSeconds == null ? '' : `${task.cpuSeconds.toFixed(2)} s`}</td>
        <td class="wide">${bytes(task.peakMemoryBytes)}</td>
        <td><button class="secondary" data-testid=${`logs-${task.service}-${task.chunkIndex}`} onClick=${() => setLogTask(task.taskId)}>logs</button></td></tr>`)}</tbody>
    </table></div>
    ${tasks.length > TASK_PAGE && html`<div class="row"><button class="secondary" disabled=${taskOffset === 0} onClick=${() => setTaskOffset(Math.max(0, taskOffset - TASK_PAGE))}>Previous</button>
      <span class="muted">${taskOffset + 1}–${Math.min(tasks.length, taskOffset + TASK_PAGE)} of ${tasks.length}</span>
      <button class="secondary" data-testid="tasks-next" disabled=${taskOffset + TASK_PAGE >= tasks.length} onClick=${() => setTaskOffset(taskOffset + TASK_PAGE)}>Next</button></div>`}
    </section>
    <${Logs} jobId=${jobId} taskFilter=${logTask} clearTask=${() => setLogTask('')} />
  </main>`;
}

function Workers() {
  const [workers, reload] = useLoad(() => api('GET', '/v1/customer/workers'), []);
  useEffect(() => {
    const timer = setInterval(reload, 3000);
    return () => clearInterval(timer);
  }, [reload]);
  const shared = workers.data?.shared;
  return html`<main><section><h2>Workers</h2>${workers.error && html`<p class="error">${workers.error}</p>`}
    <p class="muted" data-testid="shared-fleet">${shared ? `Shared fleet: ${shared.workers} worker${shared.workers === 1 ? '' : 's'}, ${shared.slots} slot${shared.slots === 1 ? '' : 's'} (run by the operator). ` : ''}Your own workers (tokens from POST /v1/auth/keys {"scope": "worker"}) are listed below.</p>
    <div class="scroll"><table data-testid="workers-table"><thead><tr><th>Name</th><th>Region</th><th>Slots</th><th>Running</th><th>CPUs</th><th>Memory</th><th>GPUs</th><th>Sandbox</th><th>Containers</th><th>Host images</th><th>Last heartbeat</th></tr></thead>
    <tbody>${(workers.data?.data || []).map((worker) => html`<tr><td>${worker.name}</td><td>${worker.region || '—'}</td><td>${worker.slots}</td><td>${worker.runningTasks}</td>
      <td>${worker.cpus}</td><td>${worker.memoryGb.toFixed(1)} GB</td><td>${worker.gpus.join(', ') || '—'}</td>
      <td title=${worker.runtime ? `limits: ${worker.runtime.limits}; network: ${worker.runtime.network}` : ''}>${worker.runtime?.sandbox || '—'}</td>
      <td title=${(worker.runtime?.images || []).join('\n')}>${worker.runtime?.containers ? `${worker.runtime.containers} (${worker.runtime.images.length} images)` : '—'}</td>
      <td>${(worker.runtime?.hostImages || []).join(', ') || '—'}</td><td>${when(worker.lastSeenAt)}</td></tr>`)}</tbody></table></div>
  </section></main>`;
}

function Registry() {
  const [apps] = useLoad(() => api('GET', '/v1/dev/apps'), []);
  const [engines] = useLoad(() => api('GET', '/v1/dev/engines'), []);
  const [templates] = useLoad(() => api('GET', '/v1/dev/templates'), []);
  const components = [...(apps.data?.data || []), ...(engines.data?.data || [])];
  return html`<main><div class="grid">
    <section><h2>Apps and engines</h2><div class="scroll"><table data-testid="apps-table"><thead><tr><th>Name</th><th>Version</th><th>Type</th><th>Status</th><th></th></tr></thead>
      <tbody>${components.map((component) => html`<tr><td>${component.name}</td><td>${component.version}</td><td>${component.type}</td><td>${component.status}</td><td class="muted">${component.builtin ? 'built-in' : ''}</td></tr>`)}</tbody></table></div></section>
    <section><h2>Templates</h2><div class="scroll"><table data-testid="templates-table"><thead><tr><th>Id</th><th>App</th><th>Partitioner</th><th>Assembler</th></tr></thead>
      <tbody>${(templates.data?.data || []).map((template) => html`<tr><td>${template.id}</td><td>${template.app}</td><td>${template.partitioner}</td><td>${template.assembler}</td></tr>`)}</tbody></table></div></section>
  </div></main>`;
}

/**
 * A sign-in link (`#/signin?key=…&next=/jobs/…`, as `npm run example` prints): the key is taken
 * from the fragment, which never reaches a server, and the address is replaced at once so it
 * stays in no history entry.
 */
function signInFromLink() {
  const match = /^#\/signin\?(.*)$/.exec(location.hash);
  if (!match) return;
  const query = new URLSearchParams(match[1]);
  const key = query.get('key');
  if (!key) return;
  sessionStorage.setItem(KEY, key);
  const next = query.get('next') || '/jobs';
  history.replaceState(null, '', `${location.pathname}#${next.startsWith('/') ? next : '/jobs'}`);
}
signInFromLink();

function App() {
  const route = useRoute();
  const [account, setAccount] = useState(null);
  useEffect(() => {
    if (!sessionStorage.getItem(KEY)) return;
    api('GET', '/v1/auth/user').then((user) => setAccount(user.accountId), () => {});
  }, []);
  if (!sessionStorage.getItem(KEY) || route[0] === 'signin') return html`<${SignIn} onSignedIn=${setAccount} />`;
  const link = (href, label, active) => html`<a href=${href} class=${active ? 'active' : ''}>${label}</a>`;
  const signOut = () => {
    sessionStorage.removeItem(KEY);
    location.hash = '#/signin';
  };
  const page = route[0] === 'jobs' && route[1] ? html`<${JobPage} key=${route[1]} jobId=${route[1]} />` : route[0] === 'workers' ? html`<${Workers} />` : route[0] === 'registry' ? html`<${Registry} />` : route[0] === 'overview' ? html`<${Overview} />` : html`<${Jobs} />`;
  return html`<header><strong>Tessera</strong><nav>
      ${link('#/jobs', 'Jobs', route[0] === 'jobs')}${link('#/workers', 'Workers', route[0] === 'workers')}${link('#/registry', 'Apps & templates', route[0] === 'registry')}${link('#/overview', 'Overview', route[0] === 'overview')}<a href="/docs">API reference</a>
    </nav><span class="account">${account ? `account ${account} · ` : ''}<a href="#/signin" onClick=${signOut}>sign out</a></span></header>${page}`;
}

const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);
