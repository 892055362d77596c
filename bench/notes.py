"""What the figures mean, kept with the code that produces them (written into RESULTS.md)."""

NOTES = """## Where the time went, and what changed

Found with py-spy on the daphne and watcher processes during the runs, fixed, measured again.

- **Channels' database hop on every message (fixed).** Channels closes stale database
  connections before dispatching each message to a consumer, with a hop to the one thread
  that runs database work. At 4,000 fragments a second that hop was where daphne spent its
  time: the bare baseline itself fell seconds behind and lost half its fragments. The relay
  consumers (`dashboard/consumers.py`, `RelayConsumer`) dispatch without it, since they touch
  the database only in `connect`, through `database_sync_to_async`; the baseline consumer
  dispatches the same way, so the comparison measures the live path's own work.
- **One Redis message per screen (fixed).** The list-based channels_redis layer pushes a
  `group_send` to every member's channel through Redis and each daphne pops them one by one.
  The pub/sub layer (`RedisPubSubChannelLayer`) publishes once per change and each daphne
  fans out to its own screens in memory. Pub/sub keeps nothing for an absent process; the live
  path does not rely on it: every change names the version it follows, heartbeats carry the
  latest versions, and a screen that missed anything gets the snapshot again (tested by
  restarting Redis under two daphne processes).
- **Django's middleware on every Call Event (fixed).** VoipNow posts several events per call
  change; each went through sessions, authentication and CSRF middleware with their thread
  hops, in the process that also fans out. The hook is now a bare ASGI app in front of Django.
- **One Redis connection per screen (fixed).** Django's cache object is per async context, so
  every consumer built its own Redis client: one cache client per process now.
- **Snapshots over 1 MiB (fixed).** The snapshot of 5,000 calls (several MB) is sent in
  messages of about 256 KiB; the rows after the first are appended by the page.
- **Parsing every call on every poll (fixed).** The client reuses the call it parsed last time
  when its JSON is unchanged, decodes with orjson, and the watcher process raises the garbage
  collector's thresholds: a full collection of the heap used to land in most 5,000-call polls.
- **What remains (scenario 2).** The bare fan-out of one fragment to 200 screens takes tens of
  milliseconds in one Python process (the baseline's p50). The live path adds, per change:
  the emulator's Call Event POST, a 10 ms window that gathers the several events of one change
  into one refresh (3 ms and 20 ms measured worse: more broadcasts, or more waiting), one GET
  of the call, rendering and one store write, and all of it shares daphne's core with the
  fan-out. Over the runs made here the live path's p95 was 130-290 ms and its p99 180-350 ms,
  with the baseline's p95 at 50-170 ms on the same runs: the targets of scenario 2 are missed.
- **Memory per screen (scenario 3).** The bare consumer on the same server, measured the same
  way on a fresh daphne, holds about 39 KiB per screen: Twisted/autobahn's protocol, the ASGI
  scope with its session and user, two tasks and the channel layer's queue. The live consumer
  holds 2-4 KiB more. In process, with the channel layer in memory, tracemalloc shows the two
  consumers within 0.5 KiB of each other.
- **Noise.** One 2-core machine runs Redis, the emulator, daphne, the watcher, the load
  processes and the driver; figures move by tens of milliseconds between runs.
"""
