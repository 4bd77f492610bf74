/**
 * Header rewrites of a route (Envoy's router HeaderParser). In: the header mutations read from a
 * Route or a weighted cluster (config/route-resource.ts) and a header map: the request on its way
 * upstream, or the response on its way to the client. Out: the map changed in place.
 *
 * As in Envoy, each level first removes its `*_headers_to_remove`, then applies its
 * `*_headers_to_add` in order, each by its append action. Levels run from the most specific (the
 * weighted cluster) to the route, so the route's value wins a conflict, unless the route
 * configuration sets most_specific_header_mutations_wins.
 */
import type { HeaderAddModel, HeaderMutationModel } from '../config/route-resource.js';
import type { HeaderMap } from '../upstream/conn-pool.js';

/** The levels that apply to one request, in the order they run. */
export function mutationLevels(
  weighted: HeaderMutationModel | undefined,
  route: HeaderMutationModel | undefined,
  mostSpecificWins: boolean,
): readonly HeaderMutationModel[] {
  const levels = [weighted, route].filter((m): m is HeaderMutationModel => m !== undefined);
  return mostSpecificWins ? levels.reverse() : levels;
}

export function mutateRequestHeaders(headers: HeaderMap, levels: readonly HeaderMutationModel[]): void {
  for (const m of levels) apply(headers, m.requestRemove, m.requestAdd);
}

export function mutateResponseHeaders(headers: HeaderMap, levels: readonly HeaderMutationModel[]): void {
  for (const m of levels) apply(headers, m.responseRemove, m.responseAdd);
}

function apply(headers: HeaderMap, remove: readonly string[], add: readonly HeaderAddModel[]): void {
  for (const name of remove) delete headers[name];
  for (const { name, value, action } of add) {
    const current = headers[name];
    switch (action) {
      case 'APPEND_IF_EXISTS_OR_ADD':
        headers[name] = current === undefined ? value : Array.isArray(current) ? [...current, value] : [current, value];
        break;
      case 'ADD_IF_ABSENT':
        if (current === undefined) headers[name] = value;
        break;
      case 'OVERWRITE_IF_EXISTS_OR_ADD':
        headers[name] = value;
        break;
      case 'OVERWRITE_IF_EXISTS':
        if (current !== undefined) headers[name] = value;
        break;
    }
  }
}
