"""The endpoint data plane: HAProxy in front of the bridge, answering endpoint requests itself.

The bridge's own proxy (serving/proxy.py) spends ~220 µs of Python per request; HAProxy spends
~50 (docs/serving.md, "Proxy"). So HAProxy listens on the bridge's service port: a request with
a live API key of the endpoint in its path (or none, to a public endpoint) whose endpoint has
one ready version without a split or a rate limit goes straight to a replica; every other request
(the API, pages, Hub tokens, wrong keys, pinned ``/vN/`` paths, splits, zero replicas) goes to the
bridge behind it, as before. The bridge keeps HAProxy's tables in step over its runtime API and
reads back what it did: in-flight counts (``show stat``) and one log line per request (metrics).
"""
