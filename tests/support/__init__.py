"""What the tests and ``make bench`` share: free ports, waiting on conditions, the process
launcher for a Callboard stack on 127.0.0.1, and the readiness checks of its processes.

``bench`` imports this package too, so nothing here may import pytest or Django at import
time.
"""
