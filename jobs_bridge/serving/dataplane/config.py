"""HAProxy's configuration for the endpoint data plane, rendered once at start.

Everything that changes at run time lives in maps and server slots that the runtime API edits
(``set map``, ``set server``), so no change needs a reload: a version takes a *slot* (a backend
with ``servers`` disabled server entries), its replicas take the slot's servers, and the maps say
which endpoint a key opens, which slot an endpoint's traffic goes to, and each slot's proxy
token, body limit and timeout.
"""

from __future__ import annotations

import json
import resource
from dataclasses import dataclass, field
from pathlib import Path

from jobs_bridge.serving.upstream import IDEMPOTENT

SLOT_ID_BASE = 1000
MAPS = ("keys", "routes", "tokens", "maxbody", "timeouts", "locked")
# The statuses HAProxy may answer itself, in the platform's one JSON error body.
OWN_ERRORS = {
    400: "The request could not be read (malformed HTTP).",
    408: "The request took too long to arrive.",
    500: "Internal error in the Floyd data plane.",
    502: "The endpoint broke off without a complete answer.",
    503: "The endpoint could not be reached; try again in a few seconds.",
    504: "The endpoint did not answer in time.",
}
REASONS = {400: "Bad Request", 408: "Request Timeout", 500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable", 504: "Gateway Timeout"}

GLOBAL = """global
    nbthread 1
    maxconn {maxconn}
    tune.bufsize 81920
    stats socket {state}/admin.sock mode 600 level admin
    log ring@access format raw local0

ring access
    # one line per request a slot answered, over TCP to the bridge (serving/dataplane/access_log.py)
    format raw
    maxlen 512
    size 8388608
    timeout connect 5s
    timeout server 1d
    server bridge 127.0.0.1:{log_port}

defaults
    mode http
    log global
    option http-keep-alive
    # a client that goes away is gone for the server too (a log follower's place comes free)
    option abortonclose
    # send each piece of a streamed answer at once: without it HAProxy marks a chunked body's
    # sends "more to come" (MSG_MORE) and the kernel held log lines and server-sent events for up
    # to 200 ms (a job log follower's p50 went from 2.5 to 133 ms)
    option http-no-delay
    # a replica that cannot be reached, or that broke off before answering (its machine went
    # away), gets the request sent to another replica at once; the slots allow the second only
    # for methods that may be sent twice (upstream.IDEMPOTENT, as the bridge's own proxy does)
    option redispatch 1
    retries 2
    retry-on conn-failure empty-response
    timeout connect 5s
    timeout client 1d
    timeout server 1d
    timeout tunnel 1d
    timeout http-request 60s
    timeout http-keep-alive 300s
    errorfiles floyd

http-errors floyd
{errorfiles}
"""

FRONTEND = """
frontend service
    bind {ip}:{port}
    # exact metrics: one line per request that a slot answers (the bridge's own are silent)
    log-format "%b %s %ST %[date(0,us),sub(txn.t0)] %ts %[var(txn.kh)]"
    http-request set-var(txn.t0) date(0,us)
    # {prefix}/<owner>/<name>/...: the endpoint is path fields 4 and 5 (after the service prefix)
    acl endpoint_path path_beg {prefix}/
    http-request set-var(txn.ep) path,field({field},/,2) if endpoint_path
    acl pinned path_reg ^{prefix}/[^/]+/[^/]+/v[0-9]+(/|$)
    acl keyed req.hdr(x-floyd-key) -m found
    acl bearer_key req.hdr(authorization) -m reg -i ^bearer\\ fk_
    acl has_auth req.hdr(authorization) -m found
    acl hub_cookie req.hdr(cookie) -m sub jupyterhub- _xsrf
    acl chunked req.hdr(transfer-encoding) -m found
    http-request set-var(txn.key) req.hdr(x-floyd-key) if endpoint_path keyed
    http-request set-var(txn.key) req.hdr(authorization),field(2,\\ ) if endpoint_path !keyed bearer_key
    http-request set-var(txn.kh) var(txn.key),sha2(256),hex,lower if {{ var(txn.key) -m found }}
    http-request set-var(txn.kep) var(txn.kh),map({state}/keys.map) if {{ var(txn.kh) -m found }}
    acl key_ok var(txn.kep),strcmp(txn.ep) eq 0
    # the address the bridge's back-off counts (the entry {hops} from the right of X-Forwarded-For)
    http-request set-var(txn.addr) req.hdr(x-forwarded-for,-{hops}) if {{ req.hdr(x-forwarded-for) -m found }}
    http-request set-var(txn.addr) src if !{{ var(txn.addr) -m found }}
    acl locked var(txn.addr),map({state}/locked.map) -m found
    http-request set-var(txn.route) var(txn.ep),map({state}/routes.map) if endpoint_path !pinned !chunked !hub_cookie !locked
    acl public_route var(txn.route) -m beg public:
    http-request set-var(txn.be) var(txn.route),field(2,:) if key_ok
    # a public endpoint, called with no credential at all (any credential is the bridge's to judge)
    http-request set-var(txn.be) var(txn.route),field(2,:) if public_route !keyed !has_auth
    use_backend %[var(txn.be)] if {{ var(txn.be) -m found }}
    default_backend bridge

backend bridge
    http-request set-log-level silent
    http-reuse always
    # the bridge judges the client by X-Forwarded-For; a request with none came from its peer
    http-request set-header X-Forwarded-For %[src] if !{{ req.hdr(x-forwarded-for) -m found }}
    server bridge 127.0.0.1:{bridge_port} maxconn {maxconn}
"""

SLOT = """
backend slot{index}
    id {iid}
    http-reuse always
    balance leastconn
    # a request can go to another replica only if HAProxy still holds all of it: a body that
    # fits tune.bufsize is read before the replica is asked (a bigger one streams, never resent)
    option http-buffer-request
    http-request disable-l7-retry if !{{ method {idempotent} }}
    http-request set-var(txn.maxbody) be_name,map({state}/maxbody.map,0)
    http-request return status 413 content-type "application/json; charset=UTF-8" lf-string \
'{{"status": 413, "message": "%[var(txn.ep)] accepts request bodies of at most %[var(txn.maxbody)] bytes; \
this one has %[req.hdr_val(content-length)]."}}' if {{ var(txn.maxbody) -m int gt 0 }} \
{{ req.hdr_val(content-length),sub(txn.maxbody) gt 0 }}
    http-request set-header X-Forwarded-Prefix {prefix}/%[var(txn.ep)]
    http-request set-header X-Forwarded-For %[src] if !{{ req.hdr(x-forwarded-for) -m found }}
    http-request set-header X-Forwarded-Proto http if !{{ req.hdr(x-forwarded-proto) -m found }}
    http-request set-header X-Forwarded-Host %[req.hdr(host)] if !{{ req.hdr(x-forwarded-host) -m found }}
    http-request set-path %[path,regsub(^{prefix}/[^/]+/[^/]+/?,/)]
    http-request del-header x-floyd-key
    http-request del-header authorization
    http-request set-header X-Floyd-Proxy-Token %[be_name,map({state}/tokens.map)]
    http-request set-timeout server be_name,map({state}/timeouts.map,86400000)
    server-template r 1-{servers} 127.0.0.1:9 disabled maxconn {replica_maxconn}
"""


@dataclass(frozen=True)
class Shape:
    """What the configuration is made for; a change needs a new HAProxy process."""

    state: Path  # maps, sockets, error files, the log of HAProxy itself
    ip: str
    port: int  # the bridge's service port (what JupyterHub's proxy sends /services/floyd/ to)
    bridge_port: int  # where the bridge's own HTTP server listens, on 127.0.0.1
    prefix: str  # the service prefix + "/endpoints" (e.g. /services/floyd/endpoints)
    slots: int
    servers: int
    replica_maxconn: int
    hops: int  # forwarded_hops of the key back-off
    log_port: int  # where the bridge reads the access log (127.0.0.1)
    maxconn: int = field(default_factory=lambda: default_maxconn())


def slot_id(index: int) -> int:
    """The slot backend's proxy id, fixed so ``show stat <id>`` asks about one slot only."""
    return SLOT_ID_BASE + index


def default_maxconn() -> int:
    """Connections at once: HAProxy needs two descriptors per connection, within the hard limit."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return max(256, min(8192, (hard - 200) // 2)) if hard != resource.RLIM_INFINITY else 8192


def error_file(status: int) -> str:
    """A whole HTTP answer, as ``errorfile`` wants it."""
    body = json.dumps({"status": status, "message": OWN_ERRORS[status]})
    extra = "Retry-After: 2\r\n" if status == 503 else ""
    return (f"HTTP/1.1 {status} {REASONS[status]}\r\nContent-Type: application/json; charset=UTF-8\r\n"
            f"Content-Length: {len(body)}\r\nCache-Control: no-cache\r\n{extra}Connection: close\r\n\r\n{body}")


def render(shape: Shape) -> str:
    """The whole configuration (the error files it names are written by ``write``)."""
    errorfiles = "".join(f"    errorfile {s} {shape.state}/error-{s}.http\n" for s in OWN_ERRORS)
    field = shape.prefix.rstrip("/").count("/") + 2  # "/services/floyd/endpoints/<owner>": field 5 (1 is "")
    text = GLOBAL.format(state=shape.state, maxconn=shape.maxconn, log_port=shape.log_port, errorfiles=errorfiles)
    text += FRONTEND.format(ip=shape.ip, port=shape.port, prefix=shape.prefix.rstrip("/"), field=field,
                            state=shape.state, hops=max(1, shape.hops), bridge_port=shape.bridge_port,
                            maxconn=shape.maxconn)
    for i in range(shape.slots):
        text += SLOT.format(index=i, iid=slot_id(i), state=shape.state, prefix=shape.prefix.rstrip("/"), servers=shape.servers,
                            replica_maxconn=shape.replica_maxconn, idempotent=" ".join(IDEMPOTENT))
    return text


def write(shape: Shape) -> Path:
    """Write the configuration, empty maps and error files under ``shape.state``; the config's path."""
    shape.state.mkdir(parents=True, exist_ok=True)
    for name in MAPS:
        (shape.state / f"{name}.map").write_text("")
    for status in OWN_ERRORS:
        (shape.state / f"error-{status}.http").write_text(error_file(status))
    path = shape.state / "haproxy.cfg"
    path.write_text(render(shape))
    return path
