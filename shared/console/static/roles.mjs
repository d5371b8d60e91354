// @ts-check
// Who may do what in the console. The API decides; this only hides what it
// would refuse.

/** @type {Readonly<Record<string, readonly string[]>>} */
export const permissions = {
  createClient: ['admin'],
  manageSensors: ['admin', 'client_admin'],
  manageUsers: ['admin', 'client_admin'],
};

/**
 * Whether a user of role may do action (a key of permissions).
 * @param {string} role
 * @param {string} action
 */
export function can(role, action) {
  return (permissions[action] || []).includes(role);
}

/** @type {Readonly<Record<string, number>>} */
const roleRank = { viewer: 1, client_admin: 2, admin: 3 };

/**
 * The roles a user of role may grant: up to their own (users.checkGrant),
 * the highest first.
 * @param {string} role
 * @returns {string[]}
 */
export function grantableRoles(role) {
  if (!can(role, 'manageUsers')) return [];
  return Object.keys(roleRank)
    .filter((r) => roleRank[r] <= roleRank[role])
    .sort((a, b) => roleRank[b] - roleRank[a]);
}
