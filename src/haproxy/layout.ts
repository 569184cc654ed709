/**
 * Names shared by the generated config and the Runtime API client: both must agree on them, or the hub
 * would steer servers that do not exist.
 */
export const sessionBackend = 'shotfleet_sessions';
export const sessionlessBackend = 'shotfleet_nodes';
export const fleetBackends = [sessionBackend, sessionlessBackend] as const;

/** The most pages a node may claim: the figure becomes its server's maxconn. */
export const maxNodePages = 100_000;

export const slotServerName = (slot: number) => `s${slot}`;

/** Where an empty slot points: a closed port on loopback, so a slot enabled by mistake fails fast. */
export const emptySlotAddress = { address: '127.0.0.1', port: 1 } as const;
