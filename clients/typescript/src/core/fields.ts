/**
 * Request bodies from the caller's objects: a typo in a field name is an error here, as the
 * server would make it, rather than a field silently left out.
 *
 * @module
 */

/** `source`'s own `names`, without those whose value is `undefined`; any other name throws. */
export function definedOnly<T extends object>(source: T, names: readonly string[]): T {
  const unknown = Object.keys(source).filter((name) => !names.includes(name));
  if (unknown.length > 0) {
    throw new TypeError(
      `unknown ${unknown.length === 1 ? 'field' : 'fields'}: ${unknown.join(', ')} (known: ${names.join(', ')})`,
    );
  }
  return Object.fromEntries(Object.entries(source).filter(([, value]) => value !== undefined)) as T;
}
