import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fleetfreedomSeed } from '@switchboard/testkit';
import {
  FF_SUBSCRIPTION_TYPES,
  FF_TYPES,
  ffPartObject,
  ffPartOf,
  ffPublicObject,
  parseFleetFreedomFrame,
  peekFfRequest,
  renderFfDeleted,
  renderFfMerged,
  renderFfResponse,
  type FfCommand,
} from '../../src/fleetfreedom/index.js';

const { CLIENT_FRAMES, SERVER_FRAMES } = fleetfreedomSeed;
const parse = (text: string) => parseFleetFreedomFrame(text, { maxDepth: 16 });

function ok(text: string): FfCommand {
  const r = parse(text);
  if (!r.ok) throw new Error(`expected ${text} to parse: ${r.error.code} ${r.error.message}`);
  return r.command;
}
function err(text: string) {
  const r = parse(text);
  if (r.ok) throw new Error(`expected ${text} to be refused`);
  return r.error;
}

describe('fleetfreedom codec: the seed client frames', () => {
  it('login (the JavaScript sample)', () => {
    expect(ok(CLIENT_FRAMES.login)).toEqual({
      kind: 'login',
      cmd: 'login',
      reqId: 1,
      username: 'email@address.com',
      password: 'password',
      userAgent: 'a short name to identify your application',
    });
  });

  it('getCompany, pretty-printed over several lines and as the JavaScript sample sends it', () => {
    const want = { kind: 'get', cmd: 'getCompany', reqId: 1, type: 'company', id: 42, company: null, v: null };
    expect(ok(CLIENT_FRAMES.getCompany)).toEqual(want);
    expect(ok(CLIENT_FRAMES.getCompanyJs)).toEqual(want);
  });

  it('subscribe with the example subscription types', () => {
    const c = ok(CLIENT_FRAMES.subscribe);
    expect(c).toMatchObject({ kind: 'subscribe', cmd: 'subscribe', reqId: 2, company: 42 });
    expect(c.kind === 'subscribe' && c.types.map((t) => t.name)).toEqual(['assetGeneral', 'assetAdvanced']);
  });
});

describe('fleetfreedom codec: commands', () => {
  it('merge with id and v is a merge of the fields; without id it creates', () => {
    expect(ok('mergeAsset {"reqId":"a","asset":{"id":7,"v":[3,1],"name":"Truck 13","tags":["on-duty"]}}')).toEqual({
      kind: 'merge',
      cmd: 'mergeAsset',
      reqId: 'a',
      type: 'asset',
      id: 7,
      v: [3, 1],
      company: null,
      fields: { name: 'Truck 13', tags: ['on-duty'] },
    });
    expect(ok('mergeProvider {"provider":{"name":"modem","company":42}}')).toMatchObject({ kind: 'merge', id: null, v: null, company: 42, reqId: null });
  });

  it('remove carries an optional whole v; get ignores v', () => {
    expect(ok('removeUser {"reqId":3,"user":{"id":9,"v":[1,1]}}')).toMatchObject({ kind: 'remove', type: 'user', id: 9, v: [1, 1] });
    expect(ok('removeUser {"reqId":3,"user":{"id":9}}')).toMatchObject({ kind: 'remove', v: null });
    expect(ok('getAsset {"asset":{"id":9,"v":[1,1]}}')).toMatchObject({ kind: 'get', v: null });
  });

  it('the command name may be followed directly by the JSON, and a command needs no body', () => {
    expect(ok('getAsset{"asset":{"id":1}}')).toMatchObject({ kind: 'get', id: 1 });
    expect(err('subscribe')).toMatchObject({ cmd: 'subscribe', code: 'invalid_message' });
  });

  it('unsubscribe de-duplicates types; company may be given as a number', () => {
    const c = ok('unsubscribe {"company":42,"subscriptionTypes":["companyPolicies","companyPolicies","userAdvanced"]}');
    expect(c.kind === 'unsubscribe' && c.types.map((t) => t.name)).toEqual(['companyPolicies', 'userAdvanced']);
  });

  it('every type has parts in the seed\'s order and every field in exactly one part', () => {
    expect(FF_TYPES.asset.parts).toEqual(['general', 'advanced']);
    expect(FF_TYPES.provider.parts).toEqual(['general', 'advanced']);
    expect(FF_TYPES.user.parts).toEqual(['general', 'advanced']);
    expect(FF_TYPES.company.parts).toEqual(['general', 'billing', 'directory', 'labels', 'policies']);
    for (const spec of Object.values(FF_TYPES)) {
      const all = Object.values(spec.fields).flat();
      expect(new Set(all).size).toBe(all.length);
    }
    expect(ffPartOf('company', 'tags')).toBe(3);
    expect(ffPartOf('company', 'sessionPolicy')).toBe(4);
    expect([...FF_SUBSCRIPTION_TYPES.keys()]).toEqual([
      'assetGeneral',
      'assetAdvanced',
      'providerGeneral',
      'providerAdvanced',
      'userGeneral',
      'userAdvanced',
      'companyGeneral',
      'companyBilling',
      'companyDirectory',
      'companyLabels',
      'companyPolicies',
    ]);
  });
});

describe('fleetfreedom codec: bad input gets its own error, naming the command and reqId', () => {
  it('malformed frames', () => {
    expect(err('')).toMatchObject({ cmd: 'error', code: 'invalid_message' });
    expect(err('{"reqId":1}')).toMatchObject({ cmd: 'error', reqId: 1, code: 'invalid_message' });
    expect(err('get-asset {}')).toMatchObject({ cmd: 'error', code: 'invalid_message' });
    expect(err('getAsset {not json')).toMatchObject({ cmd: 'getAsset', code: 'invalid_json' });
    expect(err('getAsset [1,2]')).toMatchObject({ cmd: 'getAsset', code: 'invalid_message' });
    expect(err('getAsset {"reqId":{"x":1},"asset":{"id":1}}')).toMatchObject({ cmd: 'getAsset', reqId: null, code: 'invalid_message' });
  });

  it('unknown commands and subscription types', () => {
    expect(err('launchRocket {"reqId":5}')).toMatchObject({ cmd: 'launchRocket', reqId: 5, code: 'unknown_type' });
    expect(err('getTruck {"reqId":5,"truck":{"id":1}}')).toMatchObject({ cmd: 'getTruck', code: 'unknown_type' });
    expect(err('subscribe {"reqId":6,"company":{"id":42},"subscriptionTypes":["assetGeneral","rocketGeneral"]}')).toMatchObject({
      cmd: 'subscribe',
      reqId: 6,
      code: 'unknown_type',
      message: 'unknown subscription type "rocketGeneral"',
    });
  });

  it('missing and ill-typed fields', () => {
    expect(err('getAsset {"reqId":1}')).toMatchObject({ code: 'invalid_message', message: '"asset" must be an object' });
    expect(err('getAsset {"reqId":1,"asset":{"id":"7"}}')).toMatchObject({ code: 'invalid_message', message: '"asset.id" must be a positive integer' });
    expect(err('getAsset {"reqId":1,"asset":{"id":1.5}}')).toMatchObject({ code: 'invalid_message' });
    expect(err('mergeAsset {"reqId":1,"asset":{"id":0}}')).toMatchObject({ code: 'invalid_message' });
    expect(err('mergeAsset {"reqId":1,"asset":{"id":1,"v":"1,2"}}')).toMatchObject({ code: 'invalid_message' });
    expect(err('mergeAsset {"reqId":1,"asset":{"id":1,"v":[1,-1]}}')).toMatchObject({ code: 'invalid_message' });
    expect(err('mergeAsset {"reqId":1,"asset":{"id":1,"v":[1,1],"wheels":4}}')).toMatchObject({ code: 'invalid_message', message: '"wheels" is not a field of asset (see the part lists)' });
    expect(err('mergeUser {"user":{"login":{"a":1}}}')).toMatchObject({ code: 'invalid_message' });
    expect(err('getAsset {"asset":{"id":1,"company":"42"}}')).toMatchObject({ code: 'invalid_message' });
    expect(err('login {"reqId":1,"username":"u"}')).toMatchObject({ cmd: 'login', code: 'invalid_message' });
    expect(err('login {"reqId":1,"username":7,"password":"p"}')).toMatchObject({ cmd: 'login', code: 'invalid_message' });
    expect(err('subscribe {"reqId":1,"company":{"id":"42"},"subscriptionTypes":["assetGeneral"]}')).toMatchObject({ code: 'invalid_message' });
    expect(err('subscribe {"reqId":1,"company":{"id":42},"subscriptionTypes":[]}')).toMatchObject({ code: 'invalid_message' });
    expect(err('subscribe {"reqId":1,"company":{"id":42},"subscriptionTypes":[7]}')).toMatchObject({ code: 'invalid_message' });
  });

  it('__proto__ / constructor keys and deep nesting', () => {
    expect(err('mergeAsset {"reqId":1,"asset":{"name":"x","__proto__":{"admin":true}}}')).toMatchObject({ cmd: 'mergeAsset', code: 'forbidden_key' });
    expect(err('mergeAsset {"reqId":1,"asset":{"notes":{"constructor":{"prototype":1}}}}')).toMatchObject({ code: 'forbidden_key' });
    const deep = `mergeAsset {"reqId":1,"asset":{"notes":${'['.repeat(40)}${']'.repeat(40)}}}`;
    expect(err(deep)).toMatchObject({ cmd: 'mergeAsset', code: 'too_deep' });
  });

  it('never throws, whatever the text (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), fc.jsonValue({ maxDepth: 6 }), (name, body) => {
        const r1 = parse(name);
        const r2 = parse(`${name.replace(/\s/g, '')} ${JSON.stringify(body)}`);
        for (const r of [r1, r2]) {
          if (!r.ok) expect(r.error.cmd).toMatch(/^[A-Za-z][A-Za-z0-9_]{0,63}$/);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('peeks the command and reqId of a frame known only by its first bytes', () => {
    expect(peekFfRequest('mergeAsset {"reqId": 17, "asset": {"notes": "xxxxxxxxxxxxxx')).toEqual({ cmd: 'mergeAsset', reqId: 17 });
    expect(peekFfRequest('getAsset {"reqId":"r-1"')).toEqual({ cmd: 'getAsset', reqId: 'r-1' });
    expect(peekFfRequest('{"reqId":3}')).toEqual({ cmd: 'error', reqId: 3 });
    expect(peekFfRequest('nonsense')).toEqual({ cmd: 'nonsense', reqId: null });
    expect(peekFfRequest(undefined)).toEqual({ cmd: 'error', reqId: null });
  });
});

describe('fleetfreedom codec: server frames', () => {
  it('getCompanyResponse as in the seed: reqId, errorCode, message, then the object', () => {
    const text = renderFfResponse('getCompany', 1, 0, 'Company retrieved', { company: ffPublicObject('company', { id: 1, v: [1, 1, 1, 1, 1], name: 'Acme' }, 42) });
    expect(text.startsWith('getCompanyResponse {')).toBe(true);
    const body = JSON.parse(text.slice('getCompanyResponse '.length)) as Record<string, unknown>;
    expect(body).toMatchObject(SERVER_FRAMES.getCompanyResponse);
    expect(Object.keys(body)).toEqual(['reqId', 'errorCode', 'message', 'company']);
    // A company is shown with its company id, whatever the store numbered it.
    expect(body.company).toEqual({ id: 42, company: 42, v: [1, 1, 1, 1, 1], name: 'Acme' });
  });

  it('a response without reqId has none; undefined extras are left out', () => {
    expect(renderFfResponse('connection', null, 0, 'Connected', { ghostId: 'g', user: undefined })).toBe(
      'connectionResponse {"errorCode":0,"message":"Connected","ghostId":"g"}',
    );
  });

  it('<type><Part>Merged carries id, company, the whole v and the part\'s fields only', () => {
    const obj = { id: 5, v: [4, 2], name: 'Truck 13', tags: ['speeding'], odometer: 10 };
    expect(renderFfMerged(FF_SUBSCRIPTION_TYPES.get('assetGeneral')!, obj, 42)).toBe('assetGeneralMerged {"id":5,"company":42,"v":[4,2],"name":"Truck 13"}');
    expect(renderFfMerged(FF_SUBSCRIPTION_TYPES.get('assetAdvanced')!, obj, 42)).toBe(
      'assetAdvancedMerged {"id":5,"company":42,"v":[4,2],"tags":["speeding"],"odometer":10}',
    );
    expect(ffPartObject(FF_SUBSCRIPTION_TYPES.get('companyLabels')!, { id: 1, v: [1, 1, 1, 2, 1], labels: ['a'], name: 'x' }, 42)).toEqual({
      id: 42,
      company: 42,
      v: [1, 1, 1, 2, 1],
      labels: ['a'],
    });
  });

  it('<type>Deleted {"id","company"} as the seed shows it', () => {
    const text = renderFfDeleted('asset', 123456, 42);
    expect(text).toBe('assetDeleted {"id":123456,"company":42}');
    const seed = SERVER_FRAMES.assetDeleted;
    expect(JSON.parse(text.slice('assetDeleted '.length))).toEqual(JSON.parse(seed.slice('assetDeleted '.length)));
  });
});
