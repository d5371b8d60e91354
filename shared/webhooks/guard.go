package webhooks

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"

	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// The SSRF guard. A webhook URL is chosen by a client admin, and the
// delivery worker POSTs to it from inside our network: left unchecked it
// would reach the cloud's metadata service, the database, Redis or any
// internal host. So a URL is checked twice:
//
//   - when it is stored (CheckURL): http or https only, no user name or
//     password, a port of 80, 443 or 1024-65535, and a host that is a DNS
//     name or an IP address in canonical form that is not refused (below);
//     "localhost" and its subdomains are refused as the loopback they name;
//   - when the worker connects (Dialer: net.Dialer.Control sees every
//     address the name resolved to, after resolution and before the
//     connection): the same refusal of addresses, so a name that resolves,
//     or later re-resolves (DNS rebinding), to 127.0.0.1 is refused.
//
// The worker's client uses no proxy from the environment (a proxy would
// connect for us, past the check) and follows no redirect (Client).
//
// Refused: unspecified, loopback, link-local (169.254.169.254, the metadata
// service, among them), private (RFC 1918, fc00::/7), CGNAT (100.64.0.0/10),
// multicast, reserved and documentation ranges, and the IPv6 forms that
// carry an IPv4 address (IPv4-mapped, NAT64, 6to4) when that address is
// refused. The operator may allow networks (WEBHOOK_ALLOWED_NETWORKS, a
// comma-separated CIDR list): an address inside one is not refused.

// AllowedNetworksVariable names the operator's allowance.
const AllowedNetworksVariable = "WEBHOOK_ALLOWED_NETWORKS"

// Guard decides which addresses webhooks may reach.
type Guard struct {
	allowed []netip.Prefix
}

// NewGuard returns a Guard refusing the special-purpose addresses, except
// those inside allowed.
func NewGuard(allowed ...netip.Prefix) *Guard {
	g := &Guard{}
	for _, p := range allowed {
		g.allowed = append(g.allowed, p.Masked())
	}
	return g
}

// LoadGuard reads WEBHOOK_ALLOWED_NETWORKS (optional; empty allows no
// special-purpose network) through r.
func LoadGuard(r *config.Reader) *Guard {
	prefixes, err := ParseAllowedNetworks(r.String(AllowedNetworksVariable, ""))
	if err != nil {
		r.Fail(AllowedNetworksVariable, err.Error())
	}
	return NewGuard(prefixes...)
}

// ParseAllowedNetworks parses a comma-separated list of CIDR prefixes, such
// as "127.0.0.1/32,10.20.0.0/16".
func ParseAllowedNetworks(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			return nil, fmt.Errorf("must be a comma-separated list of CIDR prefixes such as 127.0.0.1/32 (%q is not one)", part)
		}
		out = append(out, p)
	}
	return out, nil
}

// RefusedError is a connection the guard refused.
type RefusedError struct {
	Address string // the IP address (and port) refused: for operators only
	Reason  string // what kind of address it is, naming no address
}

// Error says which address was refused and why; it never holds the URL.
// It names the address a webhook's host resolved to, so it is for the
// operator's log: what a client reads is ClientError.
func (e *RefusedError) Error() string {
	return fmt.Sprintf("connection to %s refused: %s", e.Address, e.Reason)
}

// ClientError is the refusal as the webhook's client may read it (last
// error, attempt log): the reason only. The address would let a client
// admin read back what internal names resolve to (point a webhook at
// db.internal, read 10.0.3.7 in the deliveries).
func (e *RefusedError) ClientError() string { return "connection refused: " + e.Reason }

// CheckURL returns an EINVALID error naming field "url" when raw is not a
// URL a webhook may have.
func (g *Guard) CheckURL(raw string) error {
	if msg := g.urlProblem(raw); msg != "" {
		return tempwatch.Invalid("url", msg)
	}
	return nil
}

func (g *Guard) urlProblem(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Opaque != "" || u.Host == "":
		return "must be an absolute http or https URL such as https://example.com/hooks/tempwatch"
	case u.Scheme != "http" && u.Scheme != "https":
		return "must use http or https"
	case u.User != nil:
		return "must not carry a user name or password (put a token in the path or rely on the signature)"
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || !allowedPort(n) {
			return "must use port 80, 443 or one from 1024 to 65535"
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return "must not end its host with an empty port"
	}
	host := u.Hostname()
	if strings.Contains(host, "%") {
		return "must not name an IPv6 zone"
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if reason, embedded := g.refuses(a); reason != "" {
			if embedded {
				reason += " (embedded)"
			}
			return "must not point at a " + reason + " address (" + a.String() + ")"
		}
		if strings.Contains(u.Host, "[") != a.Is6() {
			return "must write an IPv6 address in brackets"
		}
		return ""
	}
	name := strings.TrimSuffix(strings.ToLower(host), ".")
	if !validHostName(name) {
		return "must have a DNS name or an IP address in canonical form as its host"
	}
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		if reason, _ := g.refuses(netip.AddrFrom4([4]byte{127, 0, 0, 1})); reason != "" {
			return "must not point at a loopback address (localhost)"
		}
	}
	return ""
}

// validHostName reports whether name is a DNS name whose last label is not
// numeric: "127.1", "2130706433" and "0x7f.1" are IPv4 addresses to some
// resolvers, in forms the address check above does not parse.
func validHostName(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	last := labels[len(labels)-1]
	if strings.HasPrefix(last, "0x") {
		return false
	}
	return strings.Trim(last, "0123456789") != ""
}

func allowedPort(n int) bool { return n == 80 || n == 443 || (n >= 1024 && n <= 65535) }

// Dialer returns a net.Dialer whose every connection goes through the
// guard's check of the address it connects to.
func (g *Guard) Dialer() *net.Dialer {
	return &net.Dialer{Control: g.control}
}

// control is called after the name is resolved and before each connection,
// with the address connected to.
func (g *Guard) control(network, address string, _ syscall.RawConn) error {
	if network != "tcp4" && network != "tcp6" {
		return &RefusedError{Address: address, Reason: "only TCP is allowed"}
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &RefusedError{Address: address, Reason: "not an IP address and port"}
	}
	if !allowedPort(int(ap.Port())) {
		return &RefusedError{Address: address, Reason: "port not allowed"}
	}
	if reason, _ := g.refuses(ap.Addr()); reason != "" {
		return &RefusedError{Address: address, Reason: reason + " address"}
	}
	return nil
}

// refuses returns what kind of special-purpose address a is, or "" when a
// webhook may reach it: a public address, or one the operator allowed;
// embedded says the kind is that of the IPv4 address a carries (NAT64,
// 6to4). The kind names no address.
func (g *Guard) refuses(a netip.Addr) (kind string, embedded bool) {
	a = a.WithZone("")
	plain := a.Unmap()
	for _, p := range g.allowed {
		if p.Contains(plain) || p.Contains(a) {
			return "", false
		}
	}
	if reason := special(plain); reason != "" {
		return reason, false
	}
	if v4, ok := embeddedIPv4(plain); ok {
		if reason, _ := g.refuses(v4); reason != "" {
			return reason, true
		}
	}
	return "", false
}

// special returns the kind of special-purpose address a (not IPv4-mapped)
// is, or "".
func special(a netip.Addr) string {
	switch {
	case a.IsUnspecified():
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return "link-local"
	case a.IsPrivate():
		return "private"
	case a.IsMulticast():
		return "multicast"
	}
	for _, r := range specialRanges {
		if r.prefix.Contains(a) {
			return r.kind
		}
	}
	return ""
}

// specialRanges are the special-purpose ranges (IANA's registries) that
// netip's predicates do not cover.
var specialRanges = []struct {
	prefix netip.Prefix
	kind   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"}, // "this network"
	{netip.MustParsePrefix("100.64.0.0/10"), "shared (CGNAT)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "reserved"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("198.18.0.0/15"), "reserved"}, // benchmarking
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"}, // and the broadcast address
	{netip.MustParsePrefix("::/96"), "reserved"},       // IPv4-compatible, deprecated
	{netip.MustParsePrefix("64:ff9b:1::/48"), "private"},
	{netip.MustParsePrefix("100::/64"), "reserved"},    // discard
	{netip.MustParsePrefix("2001::/32"), "reserved"},   // Teredo: an obfuscated IPv4 address
	{netip.MustParsePrefix("2001:2::/48"), "reserved"}, // benchmarking
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("fec0::/10"), "private"}, // site-local, deprecated
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// embeddedIPv4 returns the IPv4 address an IPv6 address of NAT64 or 6to4
// reaches.
func embeddedIPv4(a netip.Addr) (netip.Addr, bool) {
	if !a.Is6() {
		return netip.Addr{}, false
	}
	b := a.As16()
	switch {
	case nat64.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}
