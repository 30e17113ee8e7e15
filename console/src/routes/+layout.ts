// A single-page app: nothing renders on a server (nodes only serve files), nothing is prerendered.
export const ssr = false;
export const prerender = false;
