/**
 * The resource-type facts under their first module name, for the modules that still import it
 * (src/commands: being re-housed in issues 9 and 10). The facts live in
 * resource-types.ts; new code imports that.
 */
export { TYPE_PREFIX, TypeUrl, TYPE_ORDER, TYPE_SHORT, isFullStateType, isXdsTypeUrl, messageNameOf, type XdsTypeUrl } from './resource-types.js';
