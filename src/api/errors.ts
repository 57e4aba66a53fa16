import type { Socket } from 'node:net';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { ErrorCode } from '../domain/errors.js';
import { TesseraError, isTesseraError } from '../domain/errors.js';

// The one place where errors become HTTP: a gRPC code number and the usual gRPC↔HTTP status,
// in the seed's rpcStatus shape {code, message, details}. Routes throw; they never build error JSON.

const GRPC: Record<ErrorCode, { number: number; status: number }> = {
  CANCELLED: { number: 1, status: 499 },
  INVALID_ARGUMENT: { number: 3, status: 400 },
  DEADLINE_EXCEEDED: { number: 4, status: 504 },
  NOT_FOUND: { number: 5, status: 404 },
  ALREADY_EXISTS: { number: 6, status: 409 },
  PERMISSION_DENIED: { number: 7, status: 403 },
  RESOURCE_EXHAUSTED: { number: 8, status: 429 },
  FAILED_PRECONDITION: { number: 9, status: 400 },
  ABORTED: { number: 10, status: 409 },
  UNIMPLEMENTED: { number: 12, status: 501 },
  INTERNAL: { number: 13, status: 500 },
  UNAVAILABLE: { number: 14, status: 503 },
  UNAUTHENTICATED: { number: 16, status: 401 },
};

/**
 * A few request problems have an HTTP status more exact than their gRPC code's (a body format
 * Tessera does not read: 415; an Accept it cannot produce: 406; a body over the limit: 413).
 * The rpcStatus code stays the gRPC one.
 */
const HTTP_STATUS = new WeakMap<TesseraError, number>();

function withHttpStatus(error: TesseraError, status: number): TesseraError {
  HTTP_STATUS.set(error, status);
  return error;
}

export function unsupportedMediaType(message: string, status: 415 | 406 = 415): TesseraError {
  const field = status === 415 ? 'Content-Type' : 'Accept';
  return withHttpStatus(new TesseraError('INVALID_ARGUMENT', message, { field, hint: 'Tessera speaks JSON: send and accept application/json' }), status);
}

export function rpcStatus(error: TesseraError) {
  const details: Record<string, unknown>[] = [];
  if (error.fieldViolations.length > 0) {
    details.push({ '@type': 'type.googleapis.com/google.rpc.BadRequest', fieldViolations: error.fieldViolations });
  }
  details.push({ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: error.code, domain: 'tessera', metadata: error.hint ? { hint: error.hint } : {} });
  const message = error.hint ? `${error.message} (${error.hint})` : error.message;
  return { status: HTTP_STATUS.get(error) ?? GRPC[error.code].status, body: { code: GRPC[error.code].number, message, details } };
}

/** Errors raised by Fastify itself (unparsable JSON, body too large, wrong content type). */
function fromFastify(error: FastifyError): TesseraError | null {
  if (!error.code?.startsWith('FST_') || !error.statusCode || error.statusCode >= 500) return null;
  if (error.statusCode === 413) {
    return withHttpStatus(new TesseraError('RESOURCE_EXHAUSTED', `the request body is too large: ${error.message}`, { field: 'body', hint: 'send large inputs through a data source' }), 413);
  }
  if (error.statusCode === 415) return unsupportedMediaType(String(error.message));
  return new TesseraError('INVALID_ARGUMENT', `the request is malformed: ${error.message}`, { field: 'body' });
}

/**
 * The async job API (/v2, seed 004) answers errors in its own family's shape:
 * {code, message, details, time}, with a machine-readable snake_case code.
 */
export function asyncApiError(error: TesseraError) {
  const { status, body } = rpcStatus(error);
  return {
    status,
    body: {
      code: error.code.toLowerCase(),
      message: body.message,
      details: { ...(error.fieldViolations.length > 0 ? { fieldViolations: error.fieldViolations } : {}), ...(error.hint ? { hint: error.hint } : {}) },
      time: new Date().toISOString(),
    },
  };
}

function send(error: TesseraError, request: FastifyRequest, reply: FastifyReply): void {
  const { status, body } = request.url.startsWith('/v2/') ? asyncApiError(error) : rpcStatus(error);
  // UNAVAILABLE is passing (the database restarting): clients and proxies may retry after this.
  if (error.retryAfterSeconds !== undefined) void reply.header('retry-after', String(error.retryAfterSeconds));
  else if (error.code === 'UNAVAILABLE') void reply.header('retry-after', '5');
  void reply.status(status).send(body);
}

/** A full disk (or too many open files) is the server's resource running out, said as such: not a bare 500. */
function fromSystem(error: Error & { code?: string; path?: string }): TesseraError | null {
  if (error.code === 'ENOSPC' || error.code === 'EDQUOT') {
    return withHttpStatus(new TesseraError('RESOURCE_EXHAUSTED', `the server's disk is full${error.path ? ` (writing ${error.path})` : ''}: ${error.code}`, { hint: 'the operator must free space or grow the disk; retry later' }), 507);
  }
  if (error.code === 'EMFILE' || error.code === 'ENFILE') {
    return withHttpStatus(new TesseraError('RESOURCE_EXHAUSTED', `the server has run out of open files: ${error.code}`, { hint: 'retry later; the operator may raise the limit (ulimit -n)' }), 503);
  }
  return null;
}

/** A storage that is full is 507 Insufficient Storage (not 429): no client slows down to fix it. */
function diskFull(error: TesseraError): TesseraError {
  const cause = (error as { cause?: { code?: string } }).cause;
  return error.code === 'RESOURCE_EXHAUSTED' && (cause?.code === 'ENOSPC' || cause?.code === 'EDQUOT') ? withHttpStatus(error, 507) : error;
}

export function errorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const known = isTesseraError(error) ? diskFull(error) : fromFastify(error) ?? fromSystem(error);
  if (known) {
    if (rpcStatus(known).status >= 500) request.log.error({ err: error }, 'request failed');
    send(known, request, reply);
    return;
  }
  request.log.error({ err: error }, 'unexpected error');
  send(new TesseraError('INTERNAL', `internal error (request ${request.id}); the server log has the details`), request, reply);
}

/** Errors Fastify raises before routing (a malformed URL, a path parameter over its limit). */
export function frameworkErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const known = error.code === 'FST_ERR_MAX_PARAM_LENGTH'
    ? withHttpStatus(new TesseraError('INVALID_ARGUMENT', 'a path parameter is too long', { field: 'path', hint: 'job ids are 26 characters' }), 414)
    : new TesseraError('INVALID_ARGUMENT', `the request URL is malformed: ${error.message}`, { field: 'path', hint: 'percent-encode the URL correctly' });
  send(known, request, reply);
}

/**
 * Errors of the HTTP connection itself (headers over the size limit, unparsable requests):
 * answered as rpcStatus too, written straight to the socket because there is no request object.
 */
export function clientErrorHandler(error: Error & { code?: string; rawPacket?: unknown }, socket: Socket): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const tooLarge = error.code === 'HPE_HEADER_OVERFLOW';
  const problem = new TesseraError(tooLarge ? 'RESOURCE_EXHAUSTED' : 'INVALID_ARGUMENT', tooLarge ? 'the request headers (or URL) are too large' : 'the request is not valid HTTP', { field: 'request' });
  // No request object exists yet; the request line, when it arrived, still tells the API family.
  const asyncApi = Buffer.isBuffer(error.rawPacket) && /^[A-Z]{3,7} \/v2\//.test(error.rawPacket.toString('latin1', 0, 16));
  const { body } = asyncApi ? asyncApiError(problem) : rpcStatus(problem);
  const payload = JSON.stringify(body);
  const status = tooLarge ? '431 Request Header Fields Too Large' : '400 Bad Request';
  socket.end(`HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(payload)}\r\nConnection: close\r\n\r\n${payload}`);
}

export function notFoundHandler(request: FastifyRequest, reply: FastifyReply): void {
  send(new TesseraError('NOT_FOUND', `there is no ${request.method} ${request.url.split('?')[0]}`, { hint: 'GET /openapi.json lists every operation' }), request, reply);
}
