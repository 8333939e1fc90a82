// Loaded with `node --import` in front of configurable-http-proxy (floyd_hub/proxy.py).
//
// CHP decodes every request path with decodeURIComponent to find its route; a path with an
// invalid percent escape (/hub/%ff, /%c0%ae, /%zz) throws URIError and CHP answers 500 for the
// whole platform (up to 5.3.0, the latest release). Such a path can reach no route, so this
// answers 400 before the lookup, through CHP's own error path: the hub's error page
// (--error-target) for a browser, a bare status line for a websocket upgrade.
import { realpathSync } from "node:fs";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";

function decodable(url) {
  try {
    decodeURIComponent(new URL(url, "http://example.com").pathname);
    return true;
  } catch {
    return false;
  }
}

// The proxy's own module, as its bin script imports it (Node resolves the bin's symlink).
const bin = realpathSync(process.argv[1]);
const lib = pathToFileURL(join(dirname(bin), "..", "lib", "configproxy.js")).href;
const { default: ConfigurableProxy } = await import(lib);
const proto = ConfigurableProxy && ConfigurableProxy.prototype;

if (!proto || typeof proto.handleProxy !== "function" || typeof proto.handleProxyError !== "function") {
  process.stderr.write(`floyd proxy_guard: ${lib} has no handleProxy/handleProxyError; ` +
    "paths with invalid percent escapes will be answered 500\n");
} else {
  const handleProxy = proto.handleProxy;
  proto.handleProxy = function (kind, req, res, ...rest) {
    if (decodable(req.url)) {
      return handleProxy.call(this, kind, req, res, ...rest);
    }
    this.handleProxyError(400, kind, req, res);
    return Promise.resolve();
  };
}
