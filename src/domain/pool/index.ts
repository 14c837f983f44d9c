/**
 * The pool: the Pool class, which runs commands against the state, and the
 * handlers that decide each command family.
 */
export { Pool } from "./pool.js";
