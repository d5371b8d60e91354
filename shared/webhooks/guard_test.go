package webhooks_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
	"github.com/tempwatch/tempwatch/shared/webhooks"
)

// Fast tier: what the guard refuses when a URL is stored, and what its
// dialer refuses when the worker connects (to listeners of this test, on
// the loopback interface, which need no server).

func TestCheckURL(t *testing.T) {
	none := webhooks.NewGuard()
	loopback := webhooks.NewGuard(netip.MustParsePrefix("127.0.0.1/32"))
	tests := []struct {
		name  string
		guard *webhooks.Guard
		url   string
		want  string // "" accepted; else a part of the message
	}{
		{"https name", none, "https://hooks.example.com/tempwatch?token=x", ""},
		{"http name with port", none, "http://hooks.example.com:8080/x", ""},
		{"public IPv4", none, "https://93.184.215.14/x", ""},
		{"public IPv6", none, "https://[2606:4700::1111]/x", ""},
		{"ftp", none, "ftp://hooks.example.com/x", "http or https"},
		{"javascript", none, "javascript:alert(1)", "absolute"},
		{"relative", none, "/hooks", "absolute"},
		{"no host", none, "https:///x", "absolute"},
		{"userinfo", none, "https://user:pw@hooks.example.com/x", "user name or password"},
		{"user only", none, "https://user@hooks.example.com/x", "user name or password"},
		{"port 22", none, "http://hooks.example.com:22/", "port"},
		{"port 0", none, "http://hooks.example.com:0/", "port"},
		{"port too big", none, "http://hooks.example.com:70000/", "port"},
		{"empty port", none, "http://hooks.example.com:/", "empty port"},
		{"loopback", none, "http://127.0.0.1:8080/x", "loopback"},
		{"loopback /8", none, "http://127.8.9.10/x", "loopback"},
		{"loopback IPv6", none, "http://[::1]:8080/x", "loopback"},
		{"metadata", none, "http://169.254.169.254/latest/meta-data/", "link-local"},
		{"link-local IPv6", none, "http://[fe80::1]/", "link-local"},
		{"zone", none, "http://[fe80::1%25eth0]/", "zone"},
		{"RFC 1918 10", none, "http://10.0.0.1/", "private"},
		{"RFC 1918 172", none, "http://172.16.5.4/", "private"},
		{"RFC 1918 192", none, "https://192.168.1.1/", "private"},
		{"ULA", none, "http://[fd00::1]/", "private"},
		{"unspecified", none, "http://0.0.0.0:8080/", "unspecified"},
		{"this network", none, "http://0.1.2.3/", "unspecified"},
		{"unspecified IPv6", none, "http://[::]/", "unspecified"},
		{"multicast", none, "http://239.1.2.3/", "multicast"},
		{"multicast IPv6", none, "http://[ff0e::1]/", "multicast"},
		{"CGNAT", none, "http://100.64.0.1/", "CGNAT"},
		{"broadcast", none, "http://255.255.255.255/", "reserved"},
		{"IPv4-mapped loopback", none, "http://[::ffff:127.0.0.1]:8080/", "loopback"},
		{"IPv4-mapped loopback in hex", none, "http://[::ffff:7f00:1]/", "loopback"},
		{"IPv4-mapped metadata", none, "http://[::ffff:169.254.169.254]/", "link-local"},
		{"IPv4-mapped private", none, "http://[::ffff:10.0.0.1]/", "private"},
		{"NAT64 of loopback", none, "http://[64:ff9b::7f00:1]/", "loopback"},
		{"6to4 of private", none, "http://[2002:0a00:0001::1]/", "private"},
		{"IPv4-compatible", none, "http://[::127.0.0.1]/", "reserved"},
		{"decimal IPv4", none, "http://2130706433/", "canonical"},
		{"short IPv4", none, "http://127.1/", "canonical"},
		{"hex IPv4", none, "http://0x7f.0.0.1/", "canonical"},
		{"octal-looking", none, "http://0177.0.0.1/", "canonical"},
		{"localhost", none, "http://localhost:8080/", "loopback"},
		{"localhost upper, dot", none, "http://LOCALHOST./", "loopback"},
		{"localhost subdomain", none, "http://api.localhost/", "loopback"},
		{"bad host character", none, "http://hooks!.example.com/", "DNS name"},
		{"allowed loopback", loopback, "http://127.0.0.1:43210/x", ""},
		{"allowed loopback mapped", loopback, "http://[::ffff:127.0.0.1]:43210/x", ""},
		{"allowed localhost", loopback, "http://localhost:43210/x", ""},
		{"allowance is exact", loopback, "http://127.0.0.2:43210/x", "loopback"},
		{"allowance is not IPv6 loopback", loopback, "http://[::1]:43210/x", "loopback"},
		{"allowance keeps the port rule", loopback, "http://127.0.0.1:22/x", "port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.guard.CheckURL(tt.url)
			if tt.want == "" {
				assert.NoError(t, err, "CheckURL(%q)", tt.url)
				return
			}
			require.Error(t, err, "CheckURL(%q) = nil, want a refusal", tt.url)
			assert.Equal(t, tempwatch.EINVALID, tempwatch.ErrorCode(err))
			msg := tempwatch.ErrorFields(err)["url"]
			assert.Contains(t, msg, tt.want, "CheckURL(%q) names field url with why", tt.url)
		})
	}
}

func TestLoadGuard(t *testing.T) {
	r := config.NewReader(config.MapEnv(map[string]string{webhooks.AllowedNetworksVariable: "127.0.0.1/32, 10.0.0.0/8"}))
	g := webhooks.LoadGuard(r)
	require.NoError(t, r.Err())
	assert.NoError(t, g.CheckURL("http://10.1.2.3/"))
	assert.Error(t, g.CheckURL("http://192.168.0.1/"))

	r = config.NewReader(config.MapEnv(map[string]string{webhooks.AllowedNetworksVariable: "127.0.0.1,nonsense"}))
	webhooks.LoadGuard(r)
	err := r.Err()
	require.Error(t, err)
	assert.Contains(t, err.Error(), webhooks.AllowedNetworksVariable)
}

// TestDialerRefusesResolvedAddresses connects, through the worker's
// transport, to a listener on 127.0.0.1 by names and forms that all land
// on it: each is refused at connect time without an allowance (a name that
// resolves to loopback is what DNS rebinding does) and reaches it with one.
func TestDialerRefusesResolvedAddresses(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	require.NoError(t, err)

	post := func(g *webhooks.Guard, url string) error {
		c := webhooks.Client(g.Transport(5*time.Second), 5*time.Second)
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, strings.NewReader("{}"))
		require.NoError(t, err)
		resp, err := c.Do(req)
		if err == nil {
			_ = resp.Body.Close()
		}
		return err
	}
	none := webhooks.NewGuard()
	for _, host := range []string{"127.0.0.1", "localhost", "[::ffff:127.0.0.1]"} {
		err := post(none, "http://"+host+":"+port+"/")
		var refused *webhooks.RefusedError
		require.ErrorAs(t, err, &refused, "POST to %s without an allowance", host)
		assert.Contains(t, refused.Error(), "loopback")
		assert.NotContains(t, refused.Error(), "http://", "the error quotes the address, not the URL")
	}
	assert.Zero(t, hits.Load(), "no refused POST reached the listener")

	allowed := webhooks.NewGuard(netip.MustParsePrefix("127.0.0.1/32"))
	require.NoError(t, post(allowed, "http://127.0.0.1:"+port+"/"))
	assert.Equal(t, int32(1), hits.Load())
}

// TestClientIgnoresProxyFromTheEnvironment sets HTTP_PROXY to a listener
// that would relay anything, on an address the guard allows: the worker's
// client must not use it, so the POST to a refused address is refused.
func TestClientIgnoresProxyFromTheEnvironment(t *testing.T) {
	var proxied atomic.Bool
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { proxied.Store(true) }))
	t.Cleanup(proxy.Close)
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("http_proxy", proxy.URL)
	g := webhooks.NewGuard(netip.MustParsePrefix("127.0.0.1/32"))
	c := webhooks.Client(g.Transport(2*time.Second), 2*time.Second)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://10.0.0.1:8080/", nil)
	require.NoError(t, err)
	_, err = c.Do(req)
	var refused *webhooks.RefusedError
	require.True(t, errors.As(err, &refused), "POST to 10.0.0.1 = %v, want the guard's refusal", err)
	assert.Contains(t, refused.Error(), "private")
	assert.False(t, proxied.Load(), "the proxy of the environment was used")
}
