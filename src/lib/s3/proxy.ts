import http from "node:http";
import https from "node:https";

type Environment = Record<string, string | undefined>;

/**
 * The proxy requests to `url` go through, from HTTPS_PROXY (https endpoints) or HTTP_PROXY
 * (http endpoints), each also in lower case, unless NO_PROXY lists the host; undefined: direct.
 */
export function proxyFor(url: URL, env: Environment = process.env): URL | undefined {
  const proxy = url.protocol === "https:" ? (env.https_proxy ?? env.HTTPS_PROXY) : (env.http_proxy ?? env.HTTP_PROXY);
  if (!proxy || bypassesProxy(url, env.no_proxy ?? env.NO_PROXY ?? "")) return undefined;
  // "proxy:3128" without a scheme is common in the wild; it means an http proxy.
  return new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(proxy) ? proxy : `http://${proxy}`);
}

/**
 * NO_PROXY as curl reads it: entries separated by commas or spaces; "*" matches every host; an
 * entry matches its host and every subdomain (a leading "." or "*." changes nothing); an entry
 * with a port matches that port only.
 */
function bypassesProxy(url: URL, noProxy: string): boolean {
  const host = bare(url.hostname).toLowerCase();
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  return noProxy.split(/[\s,]+/).some((entry) => {
    if (entry === "*") return true;
    const match = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(entry);
    if (!match || match[1] === "") return false;
    if (match[2] !== undefined && match[2] !== port) return false;
    const domain = bare(match[1]).replace(/^\*?\./, "").toLowerCase();
    return host === domain || host.endsWith(`.${domain}`);
  });
}

function bare(hostname: string): string {
  return hostname.replace(/^\[(.*)\]$/, "$1");
}

/** A keep-alive agent for requests to `url`: through the proxy the environment names for it (CONNECT tunnels for https, absolute-URI requests for http), or direct. */
export function agentFor(url: URL, options: http.AgentOptions): http.Agent {
  const proxy = proxyFor(url);
  const secure = url.protocol === "https:";
  if (!proxy) return secure ? new https.Agent(options) : new http.Agent(options);
  // The proxy agents (and what they pull in) are loaded only where a proxy applies.
  if (secure) {
    const { HttpsProxyAgent } = require("https-proxy-agent") as typeof import("https-proxy-agent");
    return new HttpsProxyAgent(proxy, options);
  }
  const { HttpProxyAgent } = require("http-proxy-agent") as typeof import("http-proxy-agent");
  return new HttpProxyAgent(proxy, options);
}
