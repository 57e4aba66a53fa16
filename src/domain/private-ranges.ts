// Address ranges that are not the public internet: loopback, private networks, link-local (cloud
// metadata services live there), carrier-grade NAT, documentation, multicast and reserved. URL
// sources refuse them unless the operator allows it; a task's network never reaches them.

export const PRIVATE_IPV4_RANGES: readonly (readonly [string, number])[] = [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24],
  ['224.0.0.0', 4], ['240.0.0.0', 4],
];

export const PRIVATE_IPV6_RANGES: readonly (readonly [string, number])[] = [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8]];
