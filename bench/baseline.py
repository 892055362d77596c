"""The baseline: a bare Channels consumer that forwards a pre-rendered fragment from its group.

It is what the live path would cost with nothing but ``group_send`` and the websocket between
the change and the screen. It dispatches as the live consumers do (no database hop per
message). Mounted at ``/ws/bench/baseline/`` by ``bench.asgi``, never by the dashboard.
"""

from __future__ import annotations

GROUP = "bench.baseline"
MESSAGE_TYPE = "bench.fragment"
# Sent on connect, so clients wait for it exactly as they wait for the live snapshot.
HELLO = '<div id="bench-hello"></div>'
