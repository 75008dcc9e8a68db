// Vigie high-availability pair: proxy auto-configuration for the school's browsers (serve it from
// the school's web server or DHCP/WPAD; see docs/academy.md, "High availability").
// The virtual address first (keepalived moves it to the node that is up), then each node's own
// address: a browser that cannot reach one tries the next. Never DIRECT for the internet: with
// both proxies down there is no web rather than an unfiltered web (child safety fails closed).
// Replace 10.20.0.10 (virtual), 10.20.0.11 and 10.20.0.12 (nodes), the port and the school's
// networks below.
function FindProxyForURL(url, host) {
  host = host.toLowerCase();
  if (isPlainHostName(host) || host === "localhost" || dnsDomainIs(host, ".localhost") || dnsDomainIs(host, ".local")) return "DIRECT";
  // IP literals only: isInNet on a name would make the browser resolve every host it visits.
  if (/^\d+\.\d+\.\d+\.\d+$/.test(host)) {
    if (isInNet(host, "127.0.0.0", "255.0.0.0")) return "DIRECT";
    if (isInNet(host, "10.20.0.0", "255.255.0.0")) return "DIRECT";
  }
  return "PROXY 10.20.0.10:3128; PROXY 10.20.0.11:3128; PROXY 10.20.0.12:3128";
}
