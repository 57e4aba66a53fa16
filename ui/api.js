// The dashboard's calls to the API: the key kept in this tab's session storage, sent in the
// Authorization header; a 401 signs the tab out. Shared by the dashboard's pages.

export const KEY = 'tessera.apiKey';

export async function api(method, path, body) {
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
