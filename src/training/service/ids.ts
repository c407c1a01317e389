/** Job and study ids: `t-…` / `s-…`, lowercase letters, digits and dashes (safe in paths and object keys). Import-free: the route schemas the web UI reads use it. */
export const ID_PATTERN = /^[ts]-[a-z0-9]{6,12}-[a-f0-9]{6}$/;
