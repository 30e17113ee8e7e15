export * from './host.ts';
export * from './remote.ts';
export * from './rendezvous.ts';
export * from './fence.ts';
export * from './lease.ts';
export * from './placement.ts';
export * from './instance-silence.ts';
export * from './control-plane.ts';
