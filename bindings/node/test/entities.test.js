'use strict';
// Mappings (put/list/apply/delete) and the local entity store
// (list/get/put/delete) on an in-memory SQLite store: synchronous calls,
// no network.

const test = require('node:test');
const assert = require('node:assert/strict');
const integ = require('..');

const REQUEST = {
  integration_definition_id: 'hubspot-crm',
  name: 'HubSpot Production',
  credentials: { api_key: '...' },
  config: { sync_interval: 3600, entities: ['contacts', 'companies', 'deals'], auto_sync: true },
};

const CONTACT = {
  id: '501',
  properties: { email: ' Ann@Example.COM ', firstname: 'Ann', lastname: 'Lee', lastmodifieddate: '2024-01-01T00:01:00Z' },
  updatedAt: '2024-01-01T00:01:00Z',
};

const MAPPING = {
  source_entity: 'contacts',
  target_entity: 'contacts',
  field_map: { email: 'properties.email', first_name: 'properties.firstname', last_name: 'properties.lastname' },
  transform_rules: [
    { target: 'email', op: 'trim' },
    { target: 'email', op: 'lowercase' },
    { target: 'full_name', op: 'template', template: '{properties.firstname} {properties.lastname}' },
  ],
  required: ['email'],
};

function memContext() {
  return new integ.Context({ store: 'sqlite::memory:', master_key: integ.generateMasterKey() });
}

test('mappings: put, replace (same id), list, apply both ways, delete', () => {
  const ctx = memContext();
  const s = ctx.session('tenant-a', 'alice', ['admin']);
  const reader = ctx.session('tenant-a', 'rita');
  try {
    const it = s.createIntegration(REQUEST);
    assert.deepEqual(s.mappings(it.id), []);

    const m = s.putMapping(it.id, MAPPING);
    assert.match(m.id, /^[0-9a-f-]{36}$/);
    assert.equal(m.integration_id, it.id);
    assert.equal(m.source_entity, 'contacts');
    assert.deepEqual(m.field_map, MAPPING.field_map);
    assert.ok(!('tenant_id' in m));
    assert.deepEqual(s.mappings(it.id), [m]);
    assert.deepEqual(reader.mappings(it.id), [m]); // reading needs no role

    // Pull (the default direction) and push.
    const pulled = s.applyMapping(m.id, CONTACT);
    assert.deepEqual(pulled, { email: 'ann@example.com', first_name: 'Ann', last_name: 'Lee', full_name: 'Ann Lee' });
    assert.deepEqual(s.applyMapping(m.id, CONTACT, 'pull'), pulled);
    assert.deepEqual(s.applyMapping(m.id, CONTACT, null), pulled);
    const pushed = s.applyMapping(m.id, { email: 'ann@example.com', first_name: 'Ann', last_name: 'Lee' }, 'push');
    assert.deepEqual(pushed, { properties: { email: 'ann@example.com', firstname: 'Ann', lastname: 'Lee' } });
    assert.deepEqual(reader.applyMapping(m.id, CONTACT), pulled);

    // A record that fails the mapping names the field.
    assert.throws(() => s.applyMapping(m.id, { properties: { firstname: 'No', lastname: 'Mail' } }), (err) => {
      assert.ok(err instanceof integ.MappingError, String(err));
      assert.equal(err.code, -12);
      assert.match(err.message, /email/);
      return true;
    });
    assert.throws(() => s.applyMapping(m.id, CONTACT, 'sideways'), (err) => err instanceof integ.InvalidArgument && /direction/.test(err.message));
    assert.throws(() => s.applyMapping(m.id, CONTACT, 5), (err) => err instanceof integ.InvalidArgument && /direction/.test(err.message));
    assert.throws(() => s.applyMapping(m.id, 'not a record'), integ.InvalidArgument);

    // One mapping per source entity: putting again replaces, keeping the id.
    const m2 = s.putMapping(it.id, { ...MAPPING, field_map: { email: 'properties.email' }, transform_rules: [] });
    assert.equal(m2.id, m.id);
    assert.equal(m2.created_at, m.created_at);
    assert.deepEqual(s.mappings(it.id).map((x) => x.field_map), [{ email: 'properties.email' }]);
    const deals = s.putMapping(it.id, { source_entity: 'deals', target_entity: 'deals', field_map: { name: 'properties.dealname' } });
    assert.notEqual(deals.id, m.id);
    assert.equal(s.mappings(it.id).length, 2);

    // Validated when saved: the message names what is wrong.
    assert.throws(() => s.putMapping(it.id, { ...MAPPING, transform_rules: [{ target: 'email', op: 'lower' }] }), (err) => {
      assert.ok(err instanceof integ.InvalidArgument, String(err));
      assert.equal(err.code, -1);
      assert.match(err.message, /'lower'/);
      assert.match(err.message, /transform_rules\[0\]\.op/);
      return true;
    });
    assert.throws(() => s.putMapping(it.id, { ...MAPPING, field_map: { email: 'properties..email' } }),
      (err) => err instanceof integ.InvalidArgument && /properties\.\.email/.test(err.message));
    assert.throws(() => s.putMapping(it.id, { ...MAPPING, source_entity: 'widgets' }),
      (err) => err instanceof integ.InvalidArgument && /widgets/.test(err.message));
    assert.throws(() => s.putMapping(it.id, { ...MAPPING, colour: 'red' }),
      (err) => err instanceof integ.InvalidArgument && /mapping\.colour/.test(err.message));
    assert.throws(() => s.putMapping(it.id, null), integ.InvalidArgument);
    assert.equal(s.mappings(it.id).length, 2, 'nothing stored by the failures');

    // Writing needs admin.
    assert.throws(() => reader.putMapping(it.id, MAPPING), integ.PermissionDenied);
    assert.throws(() => reader.deleteMapping(m.id), integ.PermissionDenied);

    assert.equal(s.deleteMapping(m.id), undefined);
    assert.deepEqual(s.mappings(it.id).map((x) => x.id), [deals.id]);
    assert.throws(() => s.deleteMapping(m.id), integ.NotFound);
    assert.throws(() => s.applyMapping(m.id, CONTACT), integ.NotFound);

    const actions = s.audit().map((a) => a.action).filter((a) => a.startsWith('mapping.'));
    assert.deepEqual(actions, ['mapping.delete', 'mapping.put', 'mapping.put', 'mapping.put']);

    // Gone with its integration.
    s.deleteIntegration(it.id);
    assert.throws(() => s.mappings(it.id), integ.NotFound);
    assert.throws(() => s.applyMapping(deals.id, {}), integ.NotFound);
  } finally {
    reader.close();
    s.close();
    ctx.close();
  }
});

test("mappings: another tenant's ids are NotFound", () => {
  const ctx = memContext();
  const a = ctx.session('tenant-a', 'alice', ['admin']);
  const b = ctx.session('tenant-b', 'bob', ['admin']);
  try {
    const it = a.createIntegration(REQUEST);
    const m = a.putMapping(it.id, MAPPING);
    assert.throws(() => b.mappings(it.id), integ.NotFound);
    assert.throws(() => b.putMapping(it.id, MAPPING), integ.NotFound);
    assert.throws(() => b.applyMapping(m.id, CONTACT), integ.NotFound);
    assert.throws(() => b.deleteMapping(m.id), integ.NotFound);
    assert.equal(a.mappings(it.id).length, 1);
  } finally {
    a.close();
    b.close();
    ctx.close();
  }
});

test('entities: put, get, replace (version increments), list, soft delete', () => {
  const ctx = memContext();
  const s = ctx.session('tenant-a', 'alice', ['admin']);
  const reader = ctx.session('tenant-a', 'rita');
  try {
    assert.deepEqual(s.entities('contacts'), []);
    const ann = s.putEntity('contacts', { data: { email: 'ann@example.com', name: 'Ann' } });
    assert.match(ann.id, /^[0-9a-f-]{36}$/);
    assert.equal(ann.entity, 'contacts');
    assert.deepEqual(ann.data, { email: 'ann@example.com', name: 'Ann' });
    assert.equal(ann.version, 1);
    assert.equal(ann.deleted, false);
    assert.match(ann.updated_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    assert.deepEqual(ann.links, []);

    const got = s.entity('contacts', ann.id);
    assert.deepEqual(got, ann);
    assert.deepEqual(reader.entity('contacts', ann.id), ann); // reading needs no role

    const bob = s.putEntity('contacts', { data: { email: 'bob@example.com' } });
    const cid = s.putEntity('contacts', { data: { email: 'c@example.com' } }).id;

    // Replace: the whole data, version + 1. (Updated strictly later, so it
    // lists first: updated_at has millisecond resolution.)
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    const ann2 = s.putEntity('contacts', { id: ann.id, data: { email: 'ann@example.org' } });
    assert.equal(ann2.id, ann.id);
    assert.equal(ann2.version, 2);
    assert.deepEqual(ann2.data, { email: 'ann@example.org' });
    assert.equal(s.entity('contacts', ann.id).version, 2);

    // Most recently updated first; paging.
    const list = s.entities('contacts');
    assert.equal(list.length, 3);
    assert.equal(list[0].id, ann.id);
    assert.deepEqual(new Set(list.map((r) => r.id)), new Set([ann.id, bob.id, cid]));
    assert.equal(s.entities('contacts', { limit: 2 }).length, 2);
    assert.equal(s.entities('contacts', { limit: 2, offset: 2 }).length, 1);
    assert.equal(s.entities('contacts', { updated_since: '2000-01-01T00:00:00Z' }).length, 3);
    assert.equal(s.entities('contacts', { updated_since: '2999-01-01T00:00:00Z' }).length, 0);
    assert.deepEqual(s.entities('companies'), []);

    // Soft delete.
    assert.equal(s.deleteEntity('contacts', bob.id), undefined);
    const gone = s.entity('contacts', bob.id);
    assert.equal(gone.deleted, true);
    assert.ok(gone.version > bob.version);
    assert.deepEqual(s.entities('contacts').map((r) => r.id).sort(), [ann.id, cid].sort());
    const all = s.entities('contacts', { include_deleted: true });
    assert.equal(all.length, 3);
    assert.equal(all.find((r) => r.id === bob.id).deleted, true);

    // Misuse names the field.
    assert.throws(() => s.putEntity('contacts', { data: 'x' }), (err) => err instanceof integ.InvalidArgument && /data/.test(err.message));
    assert.throws(() => s.putEntity('contacts', { data: {}, colour: 1 }), (err) => err instanceof integ.InvalidArgument && /record_json\.colour/.test(err.message));
    assert.throws(() => s.putEntity('contacts', { id: 'has space', data: {} }), integ.InvalidArgument);
    assert.throws(() => s.entities('contacts', { colour: 'red' }), (err) => err instanceof integ.InvalidArgument && /colour/.test(err.message));
    assert.throws(() => s.entities('contacts', { include_deleted: 'yes' }), integ.InvalidArgument);
    assert.throws(() => s.entities(42), (err) => err instanceof integ.InvalidArgument && /entity: must be a string/.test(err.message));
    assert.throws(() => s.entity('contacts'), (err) => err instanceof integ.InvalidArgument && /localId/.test(err.message));
    assert.throws(() => s.entity('contacts', 'no-such-id'), integ.NotFound);
    // An id means "replace": it must exist (the library chooses new ids).
    assert.throws(() => s.putEntity('contacts', { id: 'no-such-id', data: {} }), integ.NotFound);
    assert.throws(() => s.deleteEntity('contacts', 'no-such-id'), integ.NotFound);

    // Writing needs admin.
    assert.throws(() => reader.putEntity('contacts', { data: {} }), integ.PermissionDenied);
    assert.throws(() => reader.deleteEntity('contacts', ann.id), integ.PermissionDenied);
    assert.equal(s.entities('contacts', { include_deleted: true }).length, 3);
  } finally {
    reader.close();
    s.close();
    ctx.close();
  }
});

test("entities: another tenant's records are NotFound and invisible", () => {
  const ctx = memContext();
  const a = ctx.session('tenant-a', 'alice', ['admin']);
  const b = ctx.session('tenant-b', 'bob', ['admin']);
  try {
    const rec = a.putEntity('contacts', { data: { email: 'ann@example.com' } });
    assert.throws(() => b.entity('contacts', rec.id), integ.NotFound);
    assert.throws(() => b.putEntity('contacts', { id: rec.id, data: { email: 'evil' } }), integ.NotFound);
    assert.throws(() => b.deleteEntity('contacts', rec.id), integ.NotFound);
    assert.deepEqual(b.entities('contacts'), []);
    const still = a.entity('contacts', rec.id);
    assert.deepEqual(still.data, { email: 'ann@example.com' });
    assert.equal(still.version, 1);
    assert.equal(still.deleted, false);
  } finally {
    a.close();
    b.close();
    ctx.close();
  }
});

test('the permission callback decides entity and mapping writes (synchronously)', () => {
  const ctx = memContext();
  const s = ctx.session('tenant-a', 'boss'); // no roles
  try {
    const calls = [];
    ctx.setPermissionCallback((t, u, r, a) => { calls.push([t, u, r, a]); return true; });
    const it = s.createIntegration(REQUEST);
    s.putMapping(it.id, MAPPING);
    const rec = s.putEntity('contacts', { data: { x: 1 } });
    s.deleteEntity('contacts', rec.id);
    assert.equal(calls.length, 4);
    for (const c of calls) assert.deepEqual(c, ['tenant-a', 'boss', 'integration', 'admin']);
    ctx.setPermissionCallback(() => false);
    assert.throws(() => s.putEntity('contacts', { data: {} }), integ.PermissionDenied);
  } finally {
    s.close();
    ctx.close();
  }
});
