// What Tessera's answers carry beyond the seed's schemas, declared beside the seed's own fields in
// the served document (the seed file itself stays byte for byte): a strict validator and a
// generated client then see every field Tessera sends. Open objects (an app's params) are said to
// be open, so a generated client types them as maps rather than as empty objects.

type Json = Record<string, any>;

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/** Any JSON an app, partitioner or assembler takes as its params. */
const OPEN = { additionalProperties: {} };

export const JOB_CONFIG_EXTENSIONS = {
  maxTaskRetries: { type: 'integer', format: 'int64', description: 'Tessera: how many times a failed task is tried again (default 2).' },
  workerPool: {
    type: 'string',
    enum: ['WORKER_POOL_ANY', 'WORKER_POOL_PRIVATE'],
    description: "Tessera: which workers may run the job's tasks. WORKER_POOL_ANY (the default): the deployment's shared workers and the account's own (workers whose token the account made, POST /v1/auth/keys {\"scope\": \"worker\"}). WORKER_POOL_PRIVATE: only the account's own; with none connected the job fails after the unserved grace period, saying so.",
  },
};

export const EXTENSION_SCHEMAS: Record<string, unknown> = {
  tesseraJobUsage: {
    type: 'object',
    description: 'Tessera: what the job used so far. Units are vCPU·GiB·hours (CPU hours of each attempt times its peak memory in GiB).',
    required: ['cpuSeconds', 'wallSeconds', 'peakMemoryBytes', 'units', 'pricePerUnit', 'tasksDone', 'tasksFailed', 'tasksTotal'],
    properties: {
      cpuSeconds: { type: 'number' },
      wallSeconds: { type: 'number' },
      peakMemoryBytes: { type: 'string', format: 'int64' },
      units: { type: 'number' },
      pricePerUnit: { type: 'number', description: 'TESSERA_PRICE_PER_UNIT: paymentAmount is units times this.' },
      tasksDone: { type: 'integer', description: 'Chunks done.' },
      tasksFailed: { type: 'integer', description: 'Attempts that failed (retried or not).' },
      tasksTotal: { type: 'integer', description: 'Chunks in all (0 until the partitioner ran).' },
    },
  },
};

/** Per seed schema: properties added beside its own, and nested property schemas declared open. */
const SEED_EXTENSIONS: Record<string, { properties?: Json; open?: string[] }> = {
  jobJob: { properties: { usage: ref('tesseraJobUsage') } },
  jobJobConfig: { properties: JOB_CONFIG_EXTENSIONS },
  jobAppParams: { open: ['partitioner', 'assembler', 'app'] },
};

/**
 * The seed's schemas with Tessera's extensions, as a new object. An extension that would change a
 * field the seed declares is a programming error, refused at once.
 */
export function extendSeedSchemas(seedSchemas: Json): Json {
  const schemas: Json = structuredClone(seedSchemas);
  for (const [name, extension] of Object.entries(SEED_EXTENSIONS)) {
    const schema = schemas[name];
    if (!schema?.properties) throw new Error(`the seed has no object schema ${name} to extend`);
    for (const [property, added] of Object.entries(extension.properties ?? {})) {
      if (property in schema.properties) throw new Error(`${name}.${property} is the seed's own; extensions only add fields beside it`);
      schema.properties[property] = added;
    }
    for (const property of extension.open ?? []) {
      const declared = schema.properties[property];
      if (!declared || declared.additionalProperties !== undefined || declared.properties) throw new Error(`${name}.${property} is not an object without fields to declare open`);
      Object.assign(declared, OPEN);
    }
  }
  return schemas;
}
