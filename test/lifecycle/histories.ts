// Replay fixtures as JSON. The SDK's own historyToJSON/historyFromJSON need the protobufjs copy of
// @temporalio/proto and of @temporalio/common to be the same module instance, which this install
// does not guarantee (two nested copies of protobufjs 8, see `npm ls protobufjs`); the History type
// of @temporalio/proto's own root converts both ways by itself.
import proto from '@temporalio/proto';

interface MessageType {
  fromObject(object: object): object;
  toObject(
    message: object,
    options: { longs: StringConstructor; enums: StringConstructor; bytes: StringConstructor },
  ): object;
}
// The package's default export is its protobufjs Root (the typings only describe the namespaces).
const historyType = (proto as unknown as { lookupType(name: string): MessageType }).lookupType(
  'temporal.api.history.v1.History',
);

export function historyFixtureJson(history: object): string {
  return JSON.stringify(
    historyType.toObject(historyType.fromObject(history), { longs: String, enums: String, bytes: String }),
    null,
    1,
  );
}

/** A History message (event ids as Long), which Worker.runReplayHistory takes as it is. */
export function historyFromFixture(text: string): object {
  return historyType.fromObject(JSON.parse(text) as object);
}
