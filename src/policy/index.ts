export { createUrlPolicy, systemResolver, type Resolver, type UrlPolicy, type UrlPolicyOptions } from './url-policy.js';
export { startPolicyProxy, refusedHeader, type PolicyProxy } from './proxy.js';
export { chromeEnvironment, policyBrowserArgs, sandboxArgs } from './browser-args.js';
