import { afterEach, describe, expect, it } from 'vitest';
import { agentReply, startAgent } from '../src/agent/agent.js';
import { createLogger } from '../src/log/logger.js';
import { askAgent as ask } from './helpers/agent-client.js';

describe('agentReply', () => {
  it('reports the free share as a weight, never below 1 % while serving', () => {
    expect(agentReply({ draining: false, freeShare: 1 })).toBe('ready up 100%\n');
    expect(agentReply({ draining: false, freeShare: 0.5 })).toBe('ready up 50%\n');
    expect(agentReply({ draining: false, freeShare: 0 })).toBe('ready up 1%\n');
    expect(agentReply({ draining: false, freeShare: 1.7 })).toBe('ready up 100%\n');
    expect(agentReply({ draining: false, freeShare: Number.NaN })).toBe('ready up 1%\n');
    expect(agentReply({ draining: true, freeShare: 1 })).toBe('drain\n');
  });
});

describe('agent over TCP', () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  it('answers each connection with the current state, survives resets, and says drain when shutting down', async () => {
    const state = { draining: false, freeShare: 0.25 };
    const agent = await startAgent({ port: 0, host: '127.0.0.1', state: () => state, log: createLogger('silent') });
    close = agent.close;
    expect(await ask(agent.port)).toBe('ready up 25%\n');
    // HAProxy resets the connection after reading: the listener must shrug it off and keep answering.
    for (let i = 0; i < 5; i++) await ask(agent.port, { reset: true }).catch(() => '');
    state.freeShare = 0;
    expect(await ask(agent.port)).toBe('ready up 1%\n');
    state.draining = true;
    expect(await ask(agent.port)).toBe('drain\n');
  });

  it('says which setting to change when the port is taken', async () => {
    const first = await startAgent({ port: 0, host: '127.0.0.1', state: () => ({ draining: false, freeShare: 1 }), log: createLogger('silent') });
    close = first.close;
    await expect(
      startAgent({ port: first.port, host: '127.0.0.1', state: () => ({ draining: false, freeShare: 1 }), log: createLogger('silent') }),
    ).rejects.toThrow(/SHOTFLEET_AGENT_PORT/);
  });
});
