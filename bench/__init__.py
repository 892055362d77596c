"""``make bench``: latency, throughput, loss and memory of the live path, measured against a
bare Channels fan-out on the same server, layer and clients (see ``bench/RESULTS.md``)."""
