/**
 * Chromium flags the URL policy needs at launch (they apply to the whole browser, not one context).
 * WebRTC sends STUN/TURN over UDP straight to any address, around the HTTP proxy: a page could reach
 * `stun:10.0.0.1` unchecked. With this policy WebRTC only uses what the proxy carries (TCP through CONNECT).
 */
export const policyBrowserArgs = ['--webrtc-ip-handling-policy=disable_non_proxied_udp'];
