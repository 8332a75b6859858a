// A real, certified OpenID provider (npm oidc-provider) on loopback, issuing Entra-shaped
// ID tokens (tid, oid, groups, preferred_username, email, email_verified), for OpenDPIA's
// tests and `make run`'s demo. Never for production.
//
//   node tests/node/oidc-provider.mjs --port 0 --client-id app --client-secret s3cret \
//     --redirect-uri http://127.0.0.1:8000/login/oidc/callback --tid TENANT \
//     --accounts accounts.json [--issuer URL] [--id-token-ttl 600] [--clock-skew=-7200] \
//     [--name camden]
//
// Prints one JSON line {"event":"listening","port":N,"issuer":URL} once it listens (wait
// for it; never sleep). Then reads JSON lines on stdin:
//   {"cmd":"disable","login":"ann"} / {"cmd":"enable","login":"ann"}: the account is
//   refused (access_denied) at its next sign-in, and its codes are no longer exchanged;
//   {"cmd":"reset"}: every account enabled again (a provider shared by several tests);
//   {"cmd":"quit"}. Each command is answered {"ok":true,"cmd":...,"disabled":[logins]}. Closing stdin quits too, so it never outlives its test (unless
//   --keep-running, as `make run` starts it).
//
// accounts.json: {"ann": {"password": "...", "email": "...", "name": "...", "oid": "...",
//   "groups": ["..."], "email_verified": true, "tid": "..."}}. The dev login page (its
//   devInteractions) checks the password given here. `tid` defaults to --tid.
import { readFileSync } from 'node:fs';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { URLSearchParams } from 'node:url';

import Provider, { errors } from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    issuer: { type: 'string' },
    'client-id': { type: 'string', default: 'opendpia' },
    'client-secret': { type: 'string', default: 'opendpia-test-secret' },
    'redirect-uri': { type: 'string', multiple: true, default: [] },
    tid: { type: 'string', default: '' },
    accounts: { type: 'string' },
    'id-token-ttl': { type: 'string', default: '600' },
    'clock-skew': { type: 'string', default: '0' },
    name: { type: 'string', default: 'op' },
    'keep-running': { type: 'boolean', default: false },
  },
});

function fail(message) {
  process.stderr.write(`oidc-provider.mjs: ${message}\n`);
  process.exit(2);
}

if (!args.accounts) fail('--accounts FILE is required');
if (!args['redirect-uri'].length) fail('at least one --redirect-uri is required');
const accounts = JSON.parse(readFileSync(args.accounts, 'utf8'));
const disabled = new Set();

// A provider whose clock is wrong when it issues tokens: they are issued (and expire) in
// another time. Only the token endpoint's clock is off, so its login page still works.
const skew = Number(args['clock-skew']) * 1000;
let skewing = false;
if (skew) {
  const realNow = Date.now;
  Date.now = () => realNow() + (skewing ? skew : 0);
}

function accountOf(login) {
  const account = accounts[login];
  return account && !disabled.has(login) ? account : undefined;
}

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), use: 'sig', alg: 'RS256' };

const port = Number(args.port);
const { createServer } = await import('node:http');
const server = createServer();
await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
const actualPort = server.address().port;
const issuer = args.issuer || `http://127.0.0.1:${actualPort}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: args['client-id'],
    client_secret: args['client-secret'],
    redirect_uris: args['redirect-uri'],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [jwk] },
  cookies: {
    keys: [randomUUID()],
    names: {
      session: `${args.name}_session`,
      interaction: `${args.name}_interaction`,
      resume: `${args.name}_resume`,
    },
  },
  pkce: { required: () => true },
  ttl: { IdToken: Number(args['id-token-ttl']), AccessToken: 600, AuthorizationCode: 60 },
  // The ID token carries the scopes' claims, as Entra's does (not only the userinfo).
  conformIdTokenClaims: false,
  claims: {
    openid: ['sub', 'tid', 'oid'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username', 'groups'],
  },
  features: { devInteractions: { enabled: true } },
  // The app is consented for the whole directory (Entra's admin consent): no consent page.
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email profile');
    grant.addOIDCClaims(['sub', 'tid', 'oid', 'email', 'email_verified', 'name',
      'preferred_username', 'groups']);
    await grant.save();
    return grant;
  },
  async findAccount(ctx, sub) {
    if (disabled.has(sub) && ['authorization', 'resume'].includes(ctx?.oidc?.route)) {
      // Still signed in here from before: refused back to the app, as Entra does.
      throw new errors.AccessDenied('This account is disabled');
    }
    const account = accountOf(sub);
    if (!account) return undefined;
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          oid: account.oid,
          tid: account.tid ?? args.tid,
          email: account.email,
          email_verified: account.email_verified ?? true,
          name: account.name,
          preferred_username: account.email,
          groups: account.groups ?? [],
        };
      },
    };
  },
});
provider.proxy = false;

provider.use(async (ctx, next) => {
  if (!skew || ctx.path !== '/token') return next();
  skewing = true;
  try {
    return await next();
  } finally {
    skewing = false;
  }
});

// The dev login page accepts any login; ours checks the account's password and whether it
// is disabled, then hands the parsed body on to the dev interactions.
provider.use(async (ctx, next) => {
  if (ctx.method === 'POST' && /^\/interaction\/[^/]+$/.test(ctx.path)) {
    const chunks = [];
    for await (const chunk of ctx.req) chunks.push(chunk);
    const body = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString()));
    ctx.request.body = body;
    if (body.prompt === 'login') {
      const known = accounts[body.login];
      if (known && disabled.has(body.login)) {
        const to = await provider.interactionResult(ctx.req, ctx.res, {
          error: 'access_denied', error_description: 'This account is disabled',
        });
        ctx.redirect(to);
        return undefined;
      }
      if (!known || known.password !== body.password) {
        ctx.status = 401;
        ctx.type = 'html';
        ctx.body = '<p id="failed">Wrong login or password</p>';
        return undefined;
      }
    }
  }
  return next();
});

server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ event: 'listening', port: actualPort, issuer })}\n`);

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  let command;
  try {
    command = JSON.parse(line);
  } catch {
    return;
  }
  if (command.cmd === 'disable') disabled.add(command.login);
  if (command.cmd === 'enable') disabled.delete(command.login);
  if (command.cmd === 'reset') disabled.clear();
  if (command.cmd === 'quit') process.exit(0);
  process.stdout.write(`${JSON.stringify({ ok: true, cmd: command.cmd, disabled: [...disabled] })}\n`);
});
// A test's provider dies with its test; `make run`'s (--keep-running) with make.
if (!args['keep-running']) lines.on('close', () => process.exit(0));
