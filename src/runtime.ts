/**
 * Node flags the gateway is started with: by `npm start`, the `vigie` command's shebang, the
 * systemd unit, the Docker image and the benchmarks (test/service-docker.test.ts checks they
 * agree). They cannot be set from inside: V8 aborts when its GC flags change after start.
 *
 * --single-threaded-gc: the gateway runs one proxy per core (`workers`), so V8's GC helper threads
 * only compete with a proxy thread for its own core. With them, a scavenge that is ~1 ms of work
 * took up to 5 ms while the proxy thread waited for helpers that could not run (perf sched: ~120
 * preemptions of the proxy thread in 3 s). Pinned gateway at a fixed 15k req/s, 3 runs each: p99
 * 5.48-5.52 ms and scavenges of at most 1.8-2.2 ms with the flag, against 5.76-20.8 ms and
 * 2.6-4.7 ms without; small requests ~2 % cheaper, tunnel setups ~3 % dearer.
 */
export const GATEWAY_NODE_FLAGS: readonly string[] = ['--single-threaded-gc'];

/** Whether this process runs with the flags above (logged at start). */
export const hasGatewayFlags = (): boolean => GATEWAY_NODE_FLAGS.every((f) => process.execArgv.includes(f));
