// Each operation's error answers in the served document: the statuses it can give, each an
// rpcStatus ({code, message, details}), and when. Derived from what the operation takes (a key, a
// path parameter, a JSON body) plus what a few operations add; the seed's own error statuses keep
// their descriptions and get the rpcStatus schema their empty one stood for.

type Json = Record<string, any>;

const RPC_STATUS = { $ref: '#/components/schemas/rpcStatus' };
/** The async job view (/v2) answers errors in its own family's shape. */
const ASYNC_ERROR = { $ref: '#/components/schemas/asyncError' };

const WHEN: Record<string, string> = {
  400: 'INVALID_ARGUMENT (code 3): a parameter or field is malformed or out of range; the message names it, the bad value and what is accepted. FAILED_PRECONDITION (code 9): the resource is not in a state that allows the call.',
  401: 'UNAUTHENTICATED (code 16): the Authorization header is missing, or its key or token is not valid here (wrong, revoked, expired, of a disabled account, or a key of another kind).',
  413: 'The request body is over its limit (1 MiB for JSON).',
  415: 'The body is not JSON: send Content-Type: application/json.',
  429: 'RESOURCE_EXHAUSTED (code 8): too many failed authentications from this address; Retry-After says when to try again.',
  500: 'INTERNAL (code 13): a fault in Tessera, logged under the request id.',
  503: 'UNAVAILABLE (code 14): the database is unreachable for the moment; Retry-After says when to try again.',
};

const QUOTA = ' Or one of the account\'s quotas is reached (the message names it and its value).';

/** What some operations add to (or say instead of) the derived statuses. */
const EXTRA: Record<string, Record<string, string>> = {
  Customer_CreateJob: { 404: 'NOT_FOUND (code 5): no template of that id, or (with jobId) no job of that id in this account.', 429: WHEN[429] + QUOTA },
  Async_StartJob: { 429: WHEN[429] + QUOTA },
  Customer_GetRunningTasks: { 404: 'NOT_FOUND (code 5): one of jobsIds is not a job of this account (the message names it).' },
  Customer_GetLogs: { 404: 'NOT_FOUND (code 5): no job of that jobId in this account.' },
  Customer_RunJob: { 429: WHEN[429] + QUOTA },
  Dev_PushApp: { 429: WHEN[429] + QUOTA },
  Dev_PushEngine: { 429: WHEN[429] + QUOTA },
  Files_Download: { 403: 'PERMISSION_DENIED (code 7): the link is not valid or has expired.' },
  Uploads_Put: {
    403: 'PERMISSION_DENIED (code 7): the link is not valid or has expired.',
    413: 'The file is over TESSERA_MAX_SOURCE_BYTES.',
    429: 'RESOURCE_EXHAUSTED (code 8): the account\'s stored-bytes quota is reached.',
    507: 'RESOURCE_EXHAUSTED (code 8): the blob folder is full.',
  },
  Auth_GetAccessToken: { 401: 'UNAUTHENTICATED (code 16): the API key is not valid (wrong, revoked, or of a disabled account).' },
  Dev_ActivateApp: { 403: 'PERMISSION_DENIED (code 7): a built-in app cannot be activated or deactivated.' },
  Dev_DeactivateApp: { 403: 'PERMISSION_DENIED (code 7): a built-in app cannot be activated or deactivated.' },
  Dev_ActivateEngine: { 403: 'PERMISSION_DENIED (code 7): a built-in engine cannot be activated or deactivated.' },
  Dev_DeactivateEngine: { 403: 'PERMISSION_DENIED (code 7): a built-in engine cannot be activated or deactivated.' },
};

/** Operations that answer only 200 (liveness). */
const NO_ERRORS = new Set(['Health_Check']);

function notFound(route: string): string {
  const names = [...route.matchAll(/\{([^}]+)\}/g)].map((match) => match[1]);
  return `NOT_FOUND (code 5): no ${names.join(' / ')} of that name in this account (another account's is not found either).`;
}

/** The error statuses of one operation, with when each is given. */
export function errorStatuses(route: string, operation: Json): Record<string, string> {
  if (NO_ERRORS.has(operation.operationId)) return {};
  const authenticated = !(Array.isArray(operation.security) && operation.security.length === 0);
  const jsonBody = Boolean(operation.requestBody?.content?.['application/json']);
  const statuses: Record<string, string> = { 400: WHEN[400]!, 500: WHEN[500]!, 503: WHEN[503]! };
  if (authenticated || operation.operationId === 'Auth_GetAccessToken') Object.assign(statuses, { 401: WHEN[401], 429: WHEN[429] });
  if (route.includes('{')) statuses[404] = notFound(route);
  if (jsonBody) Object.assign(statuses, { 413: WHEN[413], 415: WHEN[415] });
  return { ...statuses, ...EXTRA[operation.operationId] };
}

/** Adds each operation's error answers to `paths` (a document's own copy), in place. */
export function describeErrors(paths: Json): void {
  for (const [route, item] of Object.entries(paths)) {
    for (const operation of Object.values(item as Json)) {
      if (!operation || typeof operation !== 'object' || !('operationId' in operation)) continue;
      const responses: Json = (operation.responses ??= {});
      const schema = route.startsWith('/v2/') ? ASYNC_ERROR : RPC_STATUS;
      for (const [status, when] of Object.entries(errorStatuses(route, operation))) {
        responses[status] ??= { description: when, content: { 'application/json': { schema } } };
      }
      // The seed's own error statuses keep their descriptions; their empty schemas (for every media
      // type it lists) get the shape they stand for, or a generated client types the error as {}.
      for (const [status, declared] of Object.entries(responses) as [string, Json][]) {
        if (Number(status) < 400 || !declared.content) continue;
        for (const media of Object.values(declared.content) as Json[]) {
          if (Object.keys(media.schema ?? {}).length === 0) media.schema = schema;
        }
      }
    }
  }
}
