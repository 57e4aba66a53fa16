import assert from 'node:assert/strict';
import { forEachEngine } from '../helpers/db.js';
import { checkResponse } from '../helpers/responses.js';
import { jsonOf, runCli } from '../helpers/cli.js';
import { startTestTessera, waitFor } from '../helpers/tessera.js';

// An account's own keys over HTTP: listed without their secrets, made (shown once), revoked, and a
// revoked key's access tokens refused at once.

forEachEngine('keys are listed without secrets, made once, and revoked with every token made from them', async (db) => {
  const tessera = await startTestTessera(db);
  try {
    const listed = await tessera.call('GET', '/v1/auth/keys');
    assert.equal(listed.status, 200, JSON.stringify(listed.body));
    checkResponse('get', '/v1/auth/keys', listed);
    assert.equal(listed.body.keys.length, 1);
    assert.ok(!JSON.stringify(listed.body).includes(tessera.apiKey), 'the key list never holds a secret');
    assert.ok(tessera.apiKey.startsWith(listed.body.keys[0].prefix));
    // Its use is noted, in the background of the request that used it.
    await waitFor('the key\'s use to be noted', async () => (await tessera.call('GET', '/v1/auth/keys')).body.keys[0].lastUsedAt !== null, 10_000);

    const made = await tessera.call('POST', '/v1/auth/keys', {});
    assert.equal(made.status, 200, JSON.stringify(made.body));
    checkResponse('post', '/v1/auth/keys', made);
    const second: string = made.body.apiKey;
    assert.match(second, /^tsk_/);
    const token: string = (await tessera.call('POST', '/v1/auth/access_token', { apiKey: second }, null)).body.token;
    assert.equal((await tessera.call('GET', '/v1/customer/jobs', undefined, token)).status, 200);
    const worker = await tessera.call('POST', '/v1/auth/keys', { scope: 'worker' });
    assert.equal(worker.body.key.scope, 'worker');
    assert.equal((await tessera.call('GET', '/v1/customer/jobs', undefined, worker.body.apiKey)).status, 401, 'a worker token is no customer key');
    const bad = await tessera.call('POST', '/v1/auth/keys', { scope: 'operator' });
    assert.equal(bad.status, 400);

    // Revoked: the key and the token made from it stop at once.
    const revoked = await tessera.call('DELETE', `/v1/auth/keys/${made.body.key.id}`);
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    for (const credential of [second, token]) {
      const refused = await tessera.call('GET', '/v1/customer/jobs', undefined, credential);
      assert.equal(refused.status, 401, credential.slice(0, 4));
    }
    assert.match((await tessera.call('GET', '/v1/customer/jobs', undefined, token)).body.message, /the key this access token was made from was revoked/);
    assert.ok((await tessera.call('GET', '/v1/auth/keys')).body.keys.find((key: { id: string }) => key.id === made.body.key.id).revokedAt);
    assert.equal((await tessera.call('DELETE', `/v1/auth/keys/${made.body.key.id}`)).status, 404, 'revoked once');

    // Another account's key is a 404; the account's last customer key cannot go.
    const theirs = (await tessera.call('GET', '/v1/auth/keys', undefined, tessera.otherApiKey)).body.keys[0].id;
    assert.equal((await tessera.call('DELETE', `/v1/auth/keys/${theirs}`)).status, 404);
    const first = listed.body.keys[0].id;
    const last = await tessera.call('DELETE', `/v1/auth/keys/${first}`);
    assert.equal(last.status, 400);
    assert.match(last.body.message, /last customer key/);
    assert.equal((await tessera.call('GET', '/v1/customer/jobs')).status, 200);

    // The same through the CLI, with nothing but the server and a key.
    const cli = (args: string[]) => runCli([...args, '--server', tessera.url, '--key', tessera.apiKey, '--json']);
    const madeByCli = jsonOf(await cli(['key', 'create', '--worker']));
    assert.equal(madeByCli.key.scope, 'worker');
    const listedByCli = jsonOf(await cli(['key', 'list']));
    assert.ok(listedByCli.keys.some((key: { id: string }) => key.id === madeByCli.key.id));
    assert.ok(!JSON.stringify(listedByCli).includes(madeByCli.apiKey));
    assert.match(jsonOf(await cli(['key', 'revoke', madeByCli.key.id])).message, /revoked/);
    const again = await cli(['key', 'revoke', madeByCli.key.id]);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /key .* was not found/);
  } finally {
    await tessera.stop();
  }
});
