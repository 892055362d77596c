"""What the figures mean, kept with the code that produces them (written into RESULTS.md)."""

NOTES = """## Where the time went, and what changed

- **One Redis connection per screen (fixed).** `django.core.cache.cache` is a client per
  async context, so every websocket consumer built its own RedisCache, connection pool and
  TCP connection: 300 clients held 334 Redis connections and 642 open files in daphne, and
  py-spy put a quarter of daphne's samples in `RedisCache.get`, half of that in `connect`.
  `calls/live.py` now shares one cache client per process and reads the snapshot's index,
  rows and status in one hop to a worker thread (Django's cache `a*` methods each hop to the
  one thread that also runs every database query): 40 Redis connections for 300 clients.
- **Connecting is slow: a few dozen screens a second.** Each connect makes three database
  round trips on daphne's single thread-sensitive executor (session, user, supervisor), with
  a new SQLite connection each time (`CONN_MAX_AGE` 0), plus two `group_add`s and the snapshot
  read. Daphne refuses a handshake not accepted within 5 s (403), so the load processes ramp
  up 16 connects at a time each; a burst of reconnects after a daphne restart would meet the
  same limit.
- **The snapshot of 5,000 calls is never delivered (not fixed).** It is one websocket message
  of several MB; daphne's default `--websocket-max-message-size` is 1 MiB, so autobahn raises
  `PayloadExceededError`, the consumer dies and the client gets 1011, which htmx's ws
  extension answers by reconnecting, forever. The fix is to send the snapshot in chunks of
  well under 1 MiB (the first replacing `#calls-body`, the others appended to it), which
  needs an appending partial in `templates/calls/live.html`; until then, deployments with
  more than about 1,300 live calls per organization must start daphne with a larger
  `--websocket-max-message-size`. Row 4a is timed on a second daphne started that way.
- **Fan-out saturates one daphne at 200 screens x 20 changes/s, baseline included.** The
  bare `group_send` consumer falls seconds behind as well, and channels_redis then reports
  daphne's inbox over capacity (1000) and drops messages: the loss and the multi-second
  latencies of rows 1-3 come from the server process not keeping up with about 4,000
  websocket sends a second on a shared 2-core machine, not from the watcher. Rows 1 and 2
  are the next thing to profile (py-spy on daphne during the fan-out).
- **Parsing 5,000 calls takes over 100 ms** in `PhoneCall.from_json` (the diff itself is
  about 13 ms); the client and its types are another engineer's files, so it is reported,
  not changed.
- **Per-screen memory.** Measured as daphne's RSS growth over the idle clients, it includes
  Twisted/autobahn's protocol objects, the consumer and its scope (session and user), its
  `_keep_groups` task and the channel layer's per-channel receive buffer.
- **Noise.** The machine is shared: other test suites (browser tests with Chromium, demos)
  ran during the measurements; the load average at start is recorded above.
"""
