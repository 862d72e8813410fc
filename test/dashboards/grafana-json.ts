/**
 * Types that map `@grafana/schema` types onto what a dashboard JSON file can hold.
 *
 * - `JsonOf<T>`: string enums become the union of their values (JSON has no enums), all
 *   else is kept: an object literal checked with `satisfies JsonOf<Dashboard>` gets
 *   literal-union and excess-property checks (used by the strict check in schema.test.ts).
 * - `Widened<T>`: literal unions widen to `string` / `number`, because a JSON module
 *   imported with `resolveJsonModule` is typed with widened literals; `tsc` then still
 *   checks required fields and field types of the imported file.
 */
export type JsonOf<T> = T extends string
  ? `${T}`
  : T extends number | boolean | null | undefined
    ? T
    : T extends ReadonlyArray<infer U>
      ? Array<JsonOf<U>>
      : T extends object
        ? { [K in keyof T]: JsonOf<T[K]> }
        : T;

export type Widened<T> = T extends string
  ? string
  : T extends number
    ? number
    : T extends boolean
      ? boolean
      : T extends null | undefined
        ? T
        : T extends ReadonlyArray<infer U>
          ? Array<Widened<U>>
          : T extends object
            ? { [K in keyof T]: Widened<T[K]> }
            : T;
