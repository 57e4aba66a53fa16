// The API reference: every operation of /openapi.json, grouped by tag, with its parameters and
// the shapes of its request and response bodies, rendered without any library.
const main = document.getElementById('docs');

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

function resolve(document, schema) {
  let current = schema;
  for (let depth = 0; current && current.$ref && depth < 20; depth++) current = current.$ref.split('/').slice(1).reduce((node, key) => node?.[key], document);
  return current || {};
}

/** A schema as a short outline: fields with their types, nested one level at most per call. */
function outline(document, schema, depth = 0) {
  const resolved = resolve(document, schema);
  const name = schema?.$ref ? schema.$ref.split('/').pop() : '';
  if (resolved.type === 'array') return `array of ${outline(document, resolved.items, depth)}`;
  if (resolved.enum) return `${resolved.type || 'string'} (${resolved.enum.slice(0, 12).join(' | ')}${resolved.enum.length > 12 ? ' | …' : ''})`;
  if (resolved.properties && depth < 2) {
    const fields = Object.entries(resolved.properties).map(([key, value]) => `<li><code>${escape(key)}</code>${(resolved.required || []).includes(key) ? ' <em>required</em>' : ''}: ${outline(document, value, depth + 1)}</li>`);
    return `${escape(name || 'object')}<ul>${fields.join('')}</ul>`;
  }
  return escape(name || [resolved.type, resolved.format].filter(Boolean).join(' ') || 'any');
}

const document_ = await (await fetch('/openapi.json')).json();
const byTag = new Map();
for (const [path, item] of Object.entries(document_.paths)) {
  for (const [method, operation] of Object.entries(item)) {
    if (!operation || typeof operation !== 'object' || !operation.operationId) continue;
    const tag = operation.tags?.[0] || 'Other';
    if (!byTag.has(tag)) byTag.set(tag, []);
    byTag.get(tag).push({ method, path, operation });
  }
}
const sections = [...byTag].map(([tag, operations]) => `<section><h2>${escape(tag)}</h2>${operations.map(({ method, path, operation }) => {
  const parameters = (operation.parameters || []).map((parameter) => `<li><code>${escape(parameter.name)}</code> (${escape(parameter.in)}${parameter.required ? ', required' : ''}): ${outline(document_, parameter.schema)}</li>`).join('');
  const body = operation.requestBody?.content?.['application/json']?.schema;
  const answer = operation.responses?.['200']?.content;
  const answerSchema = answer?.['application/json']?.schema;
  return `<article id="${escape(operation.operationId)}" data-operation="${escape(operation.operationId)}">
    <h3><code>${method.toUpperCase()} ${escape(path)}</code></h3>
    <p>${escape(operation.summary || '')} <span class="muted">${escape(operation.operationId)}</span></p>
    ${operation.description ? `<p class="muted">${escape(operation.description)}</p>` : ''}
    ${parameters ? `<p>Parameters:</p><ul>${parameters}</ul>` : ''}
    ${body ? `<p>Body: ${outline(document_, body)}</p>` : ''}
    ${answerSchema ? `<p>Answer: ${outline(document_, answerSchema)}</p>` : answer ? `<p>Answer: ${escape(Object.keys(answer).join(', '))}</p>` : ''}
  </article>`;
}).join('')}</section>`);
main.innerHTML = `<section><h1>${escape(document_.info.title)}</h1><p class="muted">Version ${escape(document_.info.version)}. Send <code>Authorization: Bearer &lt;API key&gt;</code>. Errors are <code>rpcStatus</code>: {code, message, details}.</p></section>${sections.join('')}`;
