// Tessera's dashboard: Preact + htm, no build step. The API key is kept in this tab's session
// storage and sent in the Authorization header; live views read the API's event streams with
// fetch (EventSource cannot send the header).
import { h, render } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import htm from 'htm';
import { Overview } from './overview.js';

const html = htm.bind(h);
const KEY = 'tessera.apiKey';
const FINAL = new Set(['JOB_STATE_COMPLETE', 'JOB_STATE_FAILED']);
const LIFECYCLE = ['NEW', 'STARTED', 'UPLOADING', 'PARTITIONING', 'PARTITIONED', 'TASKS_COMPLETED', 'MERGING', 'MERGED', 'DOWNLOADING', 'COMPLETE'];
const short = (state) => (state || '').replace(/^JOB_STATE_/, '');
const when = (iso) => (iso ? new Date(iso).toLocaleString() : '');
const bytes = (n) => (n == null ? '' : n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(2)} GiB` : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${Math.round(n / 1024)} KiB`);

// ---- API -------------------------------------------------------------------------------------

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { authorization: `Bearer ${sessionStorage.getItem(KEY) || ''}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const data = await response.json().catch(() => ({}));
  if (response.status === 401) {
    sessionStorage.removeItem(KEY);
    location.hash = '#/signin';
  }
  if (!response.ok) throw new Error(data.message || `${method} ${path}: HTTP ${response.status}`);
  return data;
}

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
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const start = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError('');
    try {
      const body = { templateId };
      if (url.trim()) body.dataSource = { dataSourceDescriptor: 'url', params: { '@type': 'type.googleapis.com/bytenite.data_source.HttpDataSource', url: url.trim() } };
      if (params.trim()) body.params = JSON.parse(params);
      const { job } = await api('POST', '/v1/customer/jobs', body);
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
      <label>Input URL (empty: the template's default) <input data-testid="new-url" size="36" value=${url} onInput=${(e) => setUrl(e.target.value)} /></label>
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
        <thead><tr><th>Job</th><th>Name</th><th>Template</th><th>State</th><th>Tasks</th><th>Created</th></tr></thead>
        <tbody>${(jobs.data?.data || []).map((job) => html`<tr>
          <td><a href=${`#/jobs/${job.id}`}>${job.id}</a></td><td>${job.name}</td><td>${job.templateId}</td>
          <td><span class=${`state ${short(job.state)}`}>${short(job.state)}</span></td>
          <td>${job.usage?.tasksDone ?? 0}/${job.numChunks}</td><td>${when(job.createdAt)}</td></tr>`)}</tbody>
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

function JobPage({ jobId }) {
  const [job, setJob] = useState(null);
  const [progress, setProgress] = useState(null);
  const [tasks, setTasks] = useState([]);
  const [results, setResults] = useState([]);
  const [logs, setLogs] = useState([]);
  const [logTask, setLogTask] = useState('');
  const [error, setError] = useState('');
  const refreshTimer = useRef(null);
  const logCursor = useRef('0');
  const busy = useRef(false);
  const again = useRef(false);

  // One refresh at a time, all of it (job, tasks, results, new log lines): two overlapping ones
  // could answer out of order and an older tasks list would replace a newer one, or the same log
  // lines be added twice. A refresh asked for while one runs makes it go round once more.
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
        setTasks((await api('GET', `/v1/customer/jobs/${jobId}/tasks`)).data);
        if (current.state === 'JOB_STATE_COMPLETE') setResults((await api('GET', `/v1/customer/jobs/${jobId}/results`)).results);
        // Only the lines stored since the last read (the cursor is the last line's id), at most 5,000 shown.
        for (;;) {
          const page = await api('GET', `/v1/customer/jobs/${jobId}/logs?after=${logCursor.current}&limit=1000`);
          if (page.logs.length > 0) setLogs((old) => [...old, ...page.logs].slice(-5000));
          logCursor.current = page.next;
          if (page.logs.length < 1000) break;
        }
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
    // Live: every state change and progress report pushes an update; the page re-reads (at most every 300 ms).
    const later = () => {
      if (refreshTimer.current) return;
      refreshTimer.current = setTimeout(() => ((refreshTimer.current = null), void refresh()), 300);
    };
    follow(`/v1/customer/jobs/${jobId}/events`, (event, data) => {
      if (event === 'progress') setProgress(data);
      if (event === 'state') setJob((old) => (old ? { ...old, state: data.state, stateTimestamps: { ...old.stateTimestamps, [data.state]: data.at } } : old));
      later();
    }, controller.signal).catch(() => {}).finally(() => void refresh());
    return () => controller.abort();
  }, [jobId, refresh]);

  if (error && !job) return html`<main><section><p class="error">${error}</p><a href="#/jobs">Back to jobs</a></section></main>`;
  if (!job) return html`<main><p class="muted">Loading…</p></main>`;
  const done = progress?.tasksDone ?? job.usage?.tasksDone ?? 0;
  const total = progress?.tasksTotal ?? job.numChunks ?? 0;
  const abort = async () => {
    try {
      await api('POST', `/v1/customer/jobs/${jobId}/abort`);
      await refresh();
    } catch (failure) {
      setError(failure.message);
    }
  };
  const shown = logTask ? logs.filter((line) => line.taskId === logTask) : logs;
  return html`<main>
    <section>
      <h1>${job.name || 'Job'} <span class="muted">${job.id}</span></h1>
      <div class="row"><span class=${`state ${short(job.state)}`} data-testid="job-state">${short(job.state)}</span>
        <span class="muted">template ${job.templateId}</span>
        ${!FINAL.has(job.state) && html`<button class="danger" data-testid="abort" onClick=${abort}>Abort</button>`}</div>
      <div class="bar"><div style=${`width: ${total ? Math.round((100 * done) / total) : FINAL.has(job.state) ? 100 : 0}%`}></div></div>
      <p data-testid="progress">${done}/${total} tasks done${progress?.tasksFailed ? `, ${progress.tasksFailed} failed attempts` : ''}</p>
      <${Timeline} job=${job} />
      ${job.errorMessage && html`<p class="error" data-testid="job-error">${job.errorMessage}</p>`}
      <p class="muted">CPU ${job.usage?.cpuSeconds ?? 0} s · peak ${bytes(Number(job.usage?.peakMemoryBytes ?? 0))} · ${Number(job.usage?.units ?? 0).toPrecision(3)} vCPU·GiB·h · cost ${job.paymentAmount}</p>
    </section>
    ${results.length > 0 && html`<section><h2>Results</h2><ul data-testid="results">${results.map((result) => html`<li><a href=${result.link} target="_blank" rel="noopener">${result.name}</a></li>`)}</ul></section>`}
    <section><h2>Tasks</h2><div class="scroll"><table data-testid="tasks-table">
      <thead><tr><th>Stage</th><th>Chunk</th><th>State</th><th>Attempts</th><th>Worker</th><th>Duration</th><th>CPU</th><th>Memory</th><th>Logs</th></tr></thead>
      <tbody>${tasks.map((task) => html`<tr>
        <td>${task.service}</td><td>${task.chunkIndex}</td><td>${task.state}</td><td>${task.attempt}</td><td>${task.worker || ''}</td>
        <td>${task.wallSeconds == null ? '' : `${task.wallSeconds.toFixed(2)} s`}</td><td>${task.cpuSeconds == null ? '' : `${task.cpuSeconds.toFixed(2)} s`}</td>
        <td>${bytes(task.peakMemoryBytes)}</td>
        <td><button class="secondary" data-testid=${`logs-${task.service}-${task.chunkIndex}`} onClick=${() => setLogTask(task.taskId)}>logs</button></td></tr>`)}</tbody>
    </table></div></section>
    <section><h2>Logs ${logTask && html`<span class="muted">of task ${logTask}</span> <button class="secondary" onClick=${() => setLogTask('')}>all</button>`}</h2>
      <pre class="logs" data-testid="logs">${shown.map((line) => html`<div class=${`lvl-${line.level}`}>${`${line.timestamp.slice(11, 23)} ${line.service}${line.service === 'TASKRUNNER' ? ` #${line.chunkIndex}` : ''} ${line.level} ${line.log}`}</div>`)}${shown.length === 0 ? 'no log lines' : ''}</pre>
    </section>
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
  const page = route[0] === 'jobs' && route[1] ? html`<${JobPage} jobId=${route[1]} />` : route[0] === 'workers' ? html`<${Workers} />` : route[0] === 'registry' ? html`<${Registry} />` : route[0] === 'overview' ? html`<${Overview} />` : html`<${Jobs} />`;
  return html`<header><strong>Tessera</strong><nav>
      ${link('#/jobs', 'Jobs', route[0] === 'jobs')}${link('#/workers', 'Workers', route[0] === 'workers')}${link('#/registry', 'Apps & templates', route[0] === 'registry')}${link('#/overview', 'Overview', route[0] === 'overview')}<a href="/docs">API reference</a>
    </nav><span class="account">${account ? `account ${account} · ` : ''}<a href="#/signin" onClick=${signOut}>sign out</a></span></header>${page}`;
}

const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);
