/**
 * The AsyncAPI 3.0 document of the MQTT API, generated from the one topic map (DESIGN.md "MQTT":
 * "Document the whole API as an AsyncAPI file generated from the schemas"). Written from the
 * gateway's point of view: it receives what clients publish and sends its own topics. The ACL of
 * every channel is in `x-recorder-acl`. `recorder gateway asyncapi` prints it; docs/asyncapi.json is
 * the committed copy, checked by a test.
 */
import { TOPICS, type TopicSpec } from './topics.ts';

export function asyncApiDocument(): Record<string, unknown> {
  const channels: Record<string, unknown> = {};
  const operations: Record<string, unknown> = {};
  const messages: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(TOPICS) as [string, TopicSpec][]) {
    const params = (spec.params ?? []).map((p) => `/{${p}}`).join('');
    const address = spec.gatewayTopic
      ? `rec/v1/{unit}/gateway/${spec.suffix}`
      : `rec/v1/{unit}/{device}/${spec.suffix}${params}`;
    const sentByGateway = spec.gatewayTopic || spec.fromGateway === true;
    // JSON.stringify drops TypeBox's symbol keys, leaving plain JSON Schema. Raw bytes have no
    // JSON Schema of their own: AsyncAPI describes them as a binary string.
    const payload =
      spec.encoding === 'bytes'
        ? { type: 'string', format: 'binary', description: spec.schema.description as string }
        : (JSON.parse(JSON.stringify(spec.schema)) as Record<string, unknown>);
    delete payload.$id;
    messages[name] = {
      name,
      title: (spec.schema as { title?: string }).title ?? name,
      summary: spec.description,
      contentType:
        spec.encoding === 'json'
          ? 'application/json'
          : spec.encoding === 'bytes'
            ? 'application/octet-stream'
            : 'text/plain',
      payload,
    };
    channels[name] = {
      address,
      description: spec.description,
      parameters: {
        unit: { description: 'the unit (O of every certificate of the unit CA)' },
        ...(spec.gatewayTopic
          ? {}
          : { device: { description: 'the device number (CN of its certificate)' } }),
        ...(spec.params?.includes('id')
          ? { id: { description: 'the upload id (the evidence file name)' } }
          : {}),
        ...(spec.params?.includes('offset')
          ? { offset: { description: 'byte offset: a decimal integer without leading zeros' } }
          : {}),
      },
      messages: { [name]: { $ref: `#/components/messages/${name}` } },
      'x-recorder-acl': {
        publishers: sentByGateway ? ['gateway process'] : spec.publishers,
        readers: spec.readers,
      },
    };
    operations[`${sentByGateway ? 'send' : 'receive'}-${name}`] = {
      action: sentByGateway ? 'send' : 'receive',
      channel: { $ref: `#/channels/${name}` },
      summary: spec.description,
      bindings: { mqtt: { qos: spec.qos, retain: spec.retained, bindingVersion: '0.2.0' } },
    };
  }
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'Recorder station gateway MQTT API',
      version: '1.0.0',
      description:
        'Body-worn recorders report to the station gateway over MQTT 3.1.1 with mutual TLS. Role and id come ' +
        'from the client certificate (OU and CN); the MQTT client id must be the certificate id or start with ' +
        '"{id}:". Payloads are validated against these schemas: an invalid one is dropped and counted.',
    },
    defaultContentType: 'application/json',
    servers: {
      station: {
        host: 'station.example:8883',
        protocol: 'secure-mqtt',
        protocolVersion: '3.1.1',
        description: 'the unit collection station, reachable over the enforcement VPN only (R14)',
        security: [{ $ref: '#/components/securitySchemes/mutualTls' }],
      },
    },
    channels,
    operations,
    components: {
      messages,
      securitySchemes: {
        mutualTls: {
          type: 'X509',
          description: 'client certificate issued by the unit CA (recorder ca issue); revocation by CRL',
        },
      },
    },
  };
}
