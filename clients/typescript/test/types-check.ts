/**
 * Checks at compile time (`npm run build:test` fails, so `npm test` does): the unions written by
 * hand are exactly the generated ones, and the SDK's parameters cover what the API takes.
 * Nothing here runs.
 */
import type {
  Priority,
  SubmitParams,
  Task,
  TaskPagePromise,
  TaskStatus,
  WebhookEvent,
  LimitsUpdate,
  wire,
} from 'theazo';

type Schemas = wire.components['schemas'];
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(): T | undefined {
  return undefined;
}

assertType<Equal<TaskStatus, Schemas['TaskOut']['status']>>();
assertType<Equal<Priority, Schemas['TaskOut']['priority']>>();
assertType<Equal<Priority, NonNullable<Schemas['SubmitBody']['priority']>>>();
assertType<Equal<WebhookEvent, NonNullable<Schemas['SubmitBody']['webhookEvents']>[number]>>();
assertType<Equal<Task, Schemas['TaskOut']>>();
// Every field the server's submit body takes has a parameter, and no parameter is unknown to it.
assertType<Equal<keyof SubmitParams, keyof Schemas['SubmitBody']>>();
assertType<Equal<keyof LimitsUpdate, keyof Schemas['LimitsBody']>>();
// The product page says list(filters?) -> Promise<Task[]>: the listing is one.
assertType<TaskPagePromise extends Promise<Task[]> ? true : false>();
assertType<TaskPagePromise extends AsyncIterable<Task> ? true : false>();
