import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { invalidArgument, quote } from '../domain/errors.js';
import { openApiDocument, operations } from './openapi.js';

// Requests are checked against the OpenAPI document before any route code runs. Protobuf JSON
// sends int64 values as strings of digits, so for requests (only) every int64 field accepts a
// JSON integer or such a string; responses are checked literally, as the document declares them.

type Json = Record<string, any>;

const INT64 = /^(u?int64)$/;
const DIGITS = '^-?[0-9]{1,19}$';

/** Deep copy where every int64 schema becomes "integer or string of digits". */
function relaxInt64(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(relaxInt64);
  if (!schema || typeof schema !== 'object') return schema;
  const copy: Json = {};
  for (const [key, value] of Object.entries(schema)) copy[key] = relaxInt64(value);
  if (typeof copy.format === 'string' && INT64.test(copy.format)) {
    const { type: _type, format: _format, ...rest } = copy;
    return { ...rest, anyOf: [{ type: 'integer' }, { type: 'string', pattern: DIGITS }], 'x-int64': true };
  }
  return copy;
}

/** Local `#/components/...` references are made absolute to the document registered under `id`. */
function anchorRefs(schema: unknown, id: string): unknown {
  if (Array.isArray(schema)) return schema.map((item) => anchorRefs(item, id));
  if (!schema || typeof schema !== 'object') return schema;
  const copy: Json = {};
  for (const [key, value] of Object.entries(schema)) copy[key] = key === '$ref' && typeof value === 'string' && value.startsWith('#/') ? `${id}${value}` : anchorRefs(value, id);
  return copy;
}

function newAjv(components: Json, id: string): Ajv2020 {
  const ajv = new Ajv2020({ strict: false, allErrors: false, validateFormats: true });
  for (const name of ['int32', 'int64', 'uint64', 'double', 'float', 'byte', 'binary']) ajv.addFormat(name, true);
  ajv.addFormat('date-time', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i);
  ajv.addSchema({ $id: id, components }, id);
  return ajv;
}

/** `/filters/0/condition` → `filters[0].condition`. */
function fieldPath(instancePath: string, extra?: string): string {
  const parts = instancePath.split('/').slice(1).map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra) parts.push(extra);
  return parts.reduce((path, part) => (/^\d+$/.test(part) ? `${path}[${part}]` : path ? `${path}.${part}` : part), '');
}

function valueAt(data: unknown, instancePath: string): unknown {
  let value: any = data;
  for (const part of instancePath.split('/').slice(1)) value = value?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  return value;
}

/** The first error, worded for a person: the field, the bad value, what is accepted. */
function describe(errors: ErrorObject[], data: unknown, root: string): Error {
  // anyOf errors come after their branches' errors; an int64 field is the usual anyOf.
  const error = errors.find((candidate) => candidate.keyword === 'anyOf') ?? errors[0]!;
  const at = (extra?: string) => fieldPath(error.instancePath, extra) || root;
  const value = valueAt(data, error.instancePath);
  switch (error.keyword) {
    case 'anyOf':
      return invalidArgument(at(), `${at()} ${quote(value)} must be an integer (int64 values may be sent as a JSON number or a string of digits)`);
    case 'required':
      return invalidArgument(at(error.params.missingProperty), `${at(error.params.missingProperty)} is required`);
    case 'additionalProperties': {
      const allowed = Object.keys((error.parentSchema as Json | undefined)?.properties ?? {});
      return invalidArgument(at(error.params.additionalProperty), `unknown field ${quote(at(error.params.additionalProperty))}`, allowed.length ? `accepted fields: ${allowed.join(', ')}` : undefined);
    }
    case 'enum':
      return invalidArgument(at(), `${at()} ${quote(value)} is not one of ${(error.params.allowedValues as unknown[]).join(', ')}`);
    case 'type':
      return invalidArgument(at(), `${at()} must be ${/^[aeiou]/.test(String(error.params.type)) ? 'an' : 'a'} ${error.params.type}, got ${quote(value)}`);
    default:
      return invalidArgument(at(), `${at()} ${quote(value)} ${error.message ?? 'is invalid'}`);
  }
}

export interface RequestValidator {
  /** The body, checked; throws INVALID_ARGUMENT naming the field. */
  body(operationId: string, value: unknown): unknown;
  /** The query parameters the operation declares, checked (others are ignored). */
  query(operationId: string, query: unknown): Record<string, unknown>;
}

export function createRequestValidator(document: Json = openApiDocument()): RequestValidator {
  const id = 'tessera-request';
  const components = relaxInt64(document.components) as Json;
  // The seed types a filter's value as protobufAny (an object with @type); clients also send
  // plain JSON values, which the filter code unwraps either way, so requests may send any JSON.
  components.schemas.commonFilter.properties.value = { description: components.schemas.commonFilter.properties.value.description };
  const ajv = newAjv(components, id);
  const bodies = new Map<string, { validate: ValidateFunction; required: boolean }>();
  const queries = new Map<string, { validate: ValidateFunction; names: string[] }>();
  for (const [operationId, { operation }] of operations(document)) {
    const body = operation.requestBody?.content?.['application/json']?.schema;
    if (body) bodies.set(operationId, { validate: ajv.compile(anchorRefs(relaxInt64(body), id) as Json), required: operation.requestBody.required === true });
    const parameters = ((operation.parameters ?? []) as Json[]).filter((parameter) => parameter.in === 'query');
    const properties = Object.fromEntries(parameters.map((parameter) => [parameter.name, anchorRefs(relaxInt64(parameter.schema ?? {}), id)]));
    const required = parameters.filter((parameter) => parameter.required).map((parameter) => parameter.name);
    queries.set(operationId, { validate: ajv.compile({ type: 'object', properties, required }), names: parameters.map((parameter) => parameter.name) });
  }
  return {
    body(operationId, value) {
      const entry = bodies.get(operationId);
      if (!entry) return value;
      if (value === undefined) {
        if (entry.required) throw invalidArgument('body', 'the request body is required', 'send a JSON body with Content-Type: application/json');
        return value;
      }
      if (!entry.validate(value)) throw describe(entry.validate.errors ?? [], value, 'body');
      return value;
    },
    query(operationId, query) {
      const entry = queries.get(operationId);
      if (!entry) return {};
      const given = (query ?? {}) as Record<string, unknown>;
      const picked = Object.fromEntries(entry.names.filter((name) => given[name] !== undefined).map((name) => [name, given[name]]));
      if (!entry.validate(picked)) throw describe(entry.validate.errors ?? [], picked, 'query');
      return picked;
    },
  };
}

export interface ResponseValidator {
  /** Problems with a response body, as messages; empty when it matches the document. */
  check(method: string, pathTemplate: string, status: number, body: unknown): string[];
}

/**
 * Deep copy where every object schema that lists its properties refuses any other (unless it says
 * what others it takes): the strict reading a generated client or a validating proxy makes.
 */
function closeObjects(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(closeObjects);
  if (!schema || typeof schema !== 'object') return schema;
  const copy: Json = {};
  for (const [key, value] of Object.entries(schema)) copy[key] = closeObjects(value);
  if (copy.properties && copy.additionalProperties === undefined) copy.additionalProperties = false;
  return copy;
}

/**
 * Checks answers against the document. `strict`: a property the document does not declare is an
 * error too (the conformance suite's reading); otherwise undeclared properties pass, as JSON Schema has it.
 */
export function createResponseValidator(document: Json = openApiDocument(), options: { strict?: boolean } = {}): ResponseValidator {
  const id = options.strict ? 'tessera-response-strict' : 'tessera-response';
  const ajv = newAjv(options.strict ? (closeObjects(document.components) as Json) : document.components, id);
  const compiled = new Map<string, ValidateFunction>();
  return {
    check(method, pathTemplate, status, body) {
      const operation = document.paths?.[pathTemplate]?.[method.toLowerCase()];
      if (!operation) return [`the document has no ${method.toUpperCase()} ${pathTemplate}`];
      const schemaOf = (key: string) => operation.responses?.[key]?.content?.['application/json']?.schema;
      let schema = schemaOf(String(status));
      // The seed gives its error statuses an empty schema; errors are rpcStatus (its default response).
      // Tessera's errors always carry the code and the message, so they are required here.
      if ((!schema || Object.keys(schema).length === 0) && status >= 400) schema = schemaOf('default');
      if (status >= 400 && schema?.$ref === '#/components/schemas/rpcStatus') schema = { allOf: [schema, { required: ['code', 'message'] }] };
      if (!schema) return [`the document declares no ${status} response for ${method.toUpperCase()} ${pathTemplate}`];
      const key = `${method} ${pathTemplate} ${status}`;
      let validate = compiled.get(key);
      if (!validate) {
        validate = ajv.compile(anchorRefs(options.strict ? closeObjects(schema) : schema, id) as Json);
        compiled.set(key, validate);
      }
      if (validate(body)) return [];
      return (validate.errors ?? []).map((error) => `${fieldPath(error.instancePath) || 'body'} ${error.message ?? ''} (${JSON.stringify(error.params)})`);
    },
  };
}
