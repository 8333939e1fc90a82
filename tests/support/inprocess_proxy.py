"""The bridge's in-process endpoint proxy (jobs_bridge.serving.proxy) alone, in a process of its
own, in front of one replica: the baseline benchmarks/proxy_dataplane.py measures HAProxy against.

    python -m tests.support.inprocess_proxy --port P --replica R --token T --key K

Everything on the request path is the bridge's (routing table, gate, upstream pool, metrics); only
the key store is a one-key stand-in (the real one is a hash and a dict lookup) and there is no
database, Hub or tornado.web application behind it.
"""

from __future__ import annotations

import argparse
import asyncio

from jupyterhub.services.auth import HubAuth
from tornado.httpserver import HTTPServer
from tornado.routing import PathMatches, Rule, RuleRouter

from jobs_bridge.auth.endpoint_gate import EndpointGate
from jobs_bridge.serving.metrics import VersionStats
from jobs_bridge.serving.proxy import EndpointProxy, route
from jobs_bridge.serving.router import READY, LiveEndpoint, LiveVersion, Replica, Router

PREFIX = "/services/floyd/"


class OneKey:
    """KeyStore.check for one key of endpoint 1."""

    def __init__(self, key: str) -> None:
        self.key = key

    def check(self, secret: str, endpoint_id: int) -> bool:
        return secret == self.key and endpoint_id == 1


async def serve(port: int, replica: int, token: str, key: str, endpoint: str) -> None:
    router = Router()
    owner, name = endpoint.split("/")
    ep = router.add_endpoint(LiveEndpoint(id=1, owner=owner, name=name, public=False))
    router.add_version(ep, LiveVersion(id=1, number=1, state=READY, stats=VersionStats(1), token=token,
                                       replicas=[Replica(index=0, port=replica, ready=True, state="ready")]))
    router.loaded = True
    gate = EndpointGate(OneKey(key), HubAuth(api_token="unused"))  # type: ignore[arg-type]  # a stand-in store
    server = HTTPServer(RuleRouter([Rule(PathMatches(route(PREFIX)), EndpointProxy(router, gate, PREFIX))]),
                        xheaders=True)
    server.listen(port, "127.0.0.1")
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for arg in ("--port", "--replica"):
        parser.add_argument(arg, type=int, required=True)
    for arg in ("--token", "--key", "--endpoint"):
        parser.add_argument(arg, required=True)
    a = parser.parse_args()
    asyncio.run(serve(a.port, a.replica, a.token, a.key, a.endpoint))


if __name__ == "__main__":
    main()
