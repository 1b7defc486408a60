import test from 'ava';
import { mayPublish, maySubscribe, type Identity } from '../../protocol/acl.ts';
import { decodePayload, deviceTopic, gatewayTopic, parseTopic } from '../../protocol/topics.ts';

const U = 'HN-CS';
const device: Identity = { role: 'device', id: 'HN-CS-0001', unit: U };
const manager: Identity = { role: 'manager', id: 'm1', unit: U };
const technician: Identity = { role: 'technician', id: 't1', unit: U };
const gateway: Identity = { role: 'gateway', id: 'relay', unit: U };

test('topics round-trip through the builders and the parser', (t) => {
  t.deepEqual(parseTopic(deviceTopic('cmdResult', U, 'D1')), { name: 'cmdResult', unit: U, device: 'D1' });
  t.deepEqual(parseTopic(gatewayTopic('fleet', U)), { name: 'fleet', unit: U, device: 'gateway' });
  for (const bad of [
    'rec/v1/HN-CS/D1',
    'rec/v2/HN-CS/D1/status',
    'rec/v1/HN-CS/+/status',
    'rec/v1/HN-CS/D1/nope',
    'rec/v1/HN-CS/gateway/event',
    'rec/v1/$x/D1/status',
  ]) {
    t.is(parseTopic(bad), undefined, bad);
  }
});

test('a device publishes only its own device→ topics', (t) => {
  t.is(mayPublish(device, deviceTopic('status', U, 'HN-CS-0001')), 'status');
  t.is(mayPublish(device, deviceTopic('availability', U, 'HN-CS-0001')), 'availability');
  t.is(mayPublish(device, deviceTopic('event', U, 'HN-CS-0001')), 'event');
  t.is(mayPublish(device, deviceTopic('cmdResult', U, 'HN-CS-0001')), 'cmdResult');
  t.is(mayPublish(device, deviceTopic('status', U, 'HN-CS-0002')), undefined);
  t.is(mayPublish(device, deviceTopic('cmd', U, 'HN-CS-0001')), undefined);
  t.is(mayPublish(device, deviceTopic('status', 'OTHER', 'HN-CS-0001')), undefined);
  t.is(mayPublish(device, gatewayTopic('fleet', U)), undefined);
  t.is(mayPublish(device, '$SYS/broker/x'), undefined);
});

test('managers and technicians publish only commands; nobody publishes gateway topics or $SYS', (t) => {
  for (const who of [manager, technician]) {
    t.is(mayPublish(who, deviceTopic('cmd', U, 'HN-CS-0001')), 'cmd');
    t.is(mayPublish(who, deviceTopic('status', U, 'HN-CS-0001')), undefined);
    t.is(mayPublish(who, deviceTopic('availability', U, 'HN-CS-0001')), undefined);
  }
  for (const who of [device, manager, technician, gateway]) {
    t.is(mayPublish(who, gatewayTopic('fleet', U)), undefined);
    t.is(mayPublish(who, gatewayTopic('gatewayStatus', U)), undefined);
    t.is(mayPublish(who, '$SYS/x'), undefined);
  }
});

test('subscriptions: a device only its own commands; a manager the watch topics of its unit', (t) => {
  t.true(maySubscribe(device, deviceTopic('cmd', U, 'HN-CS-0001')));
  for (const f of [
    deviceTopic('cmd', U, 'HN-CS-0002'),
    `rec/v1/${U}/+/cmd`,
    `rec/v1/${U}/+/status`,
    '#',
    `rec/v1/${U}/#`,
    gatewayTopic('fleet', U),
  ]) {
    t.false(maySubscribe(device, f), f);
  }
  for (const f of [
    `rec/v1/${U}/+/status`,
    `rec/v1/${U}/+/availability`,
    `rec/v1/${U}/D9/event`,
    `rec/v1/${U}/+/cmd/result`,
    gatewayTopic('fleet', U),
    gatewayTopic('gatewayStatus', U),
  ]) {
    t.true(maySubscribe(manager, f), f);
  }
  for (const f of [
    '#',
    `rec/v1/${U}/#`,
    `rec/v1/${U}/+/+`,
    `rec/v1/${U}/+/cmd`,
    `rec/v1/OTHER/+/status`,
    '$SYS/#',
    `rec/v1/${U}/D1/#`,
  ]) {
    t.false(maySubscribe(manager, f), f);
  }
  t.true(maySubscribe(gateway, `rec/v1/${U}/#`));
  t.false(maySubscribe(gateway, `rec/v1/OTHER/#`));
});

test('payloads: JSON parse errors and every schema problem are reported', (t) => {
  const bad = decodePayload('status', Buffer.from('{"device":"D1"'));
  t.false(bad.ok);
  const wrong = decodePayload('cmd', Buffer.from(JSON.stringify({ id: 'x', name: 'explode', time: 'now' })));
  t.false(wrong.ok);
  if (!wrong.ok) t.true(wrong.problems.length >= 2);
  t.true(decodePayload('availability', Buffer.from('online')).ok);
  t.false(decodePayload('availability', Buffer.from('"online"')).ok);
  t.false(decodePayload('availability', Buffer.from([0xff, 0xfe])).ok);
});
