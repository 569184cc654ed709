/** The states the hub lists a node in (GET /nodes): part of the public API, so the API description names them too. */
export type NodeState = 'up' | 'suspect' | 'draining';
export const nodeStates: readonly NodeState[] = ['up', 'suspect', 'draining'];
