import type { FastifyRequest } from 'fastify';
import type { Config } from '../config/config.js';

/** The base of links Tessera hands out: TESSERA_PUBLIC_URL when set, else what the request was sent to. */
export function baseUrlOf(config: Config, request: FastifyRequest): string {
  return config.publicUrl ?? `${request.protocol}://${request.host}`;
}
