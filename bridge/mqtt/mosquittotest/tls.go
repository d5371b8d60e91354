package mosquittotest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TLS is a private Mosquitto that also listens with TLS.
type TLS struct {
	*Broker
	// TLSPort is the TLS listener's port on 127.0.0.1; its certificate is
	// for localhost, so dial localhost:TLSPort.
	TLSPort string
	// Roots trusts the broker's self-signed certificate, and nothing else.
	Roots *x509.CertPool
}

// MustStartTLS starts a broker (see MustStart) with a second listener,
// for TLS, with a fresh self-signed certificate for localhost.
func MustStartTLS(tb testing.TB) *TLS {
	tb.Helper()
	dir := tb.TempDir()
	roots, err := writeLocalhostCert(dir)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	_ = ln.Close()
	b := MustStart(tb, "listener "+port+" 127.0.0.1",
		"certfile "+filepath.Join(dir, "cert.pem"), "keyfile "+filepath.Join(dir, "key.pem"))
	return &TLS{Broker: b, TLSPort: port, Roots: roots}
}

// writeLocalhostCert writes a self-signed certificate for localhost and
// its key to dir/cert.pem and dir/key.pem and returns a pool that trusts
// it.
func writeLocalhostCert(dir string) (*x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localhost"},
		DNSNames:              []string{"localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	// Readable by all: mosquitto started as root reads them as its own user.
	for _, d := range []string{filepath.Dir(dir), dir} { // t.TempDir's own parent too
		if err := os.Chmod(d, 0o755); err != nil {
			return nil, err
		}
	}
	for name, block := range map[string]*pem.Block{"cert.pem": {Type: "CERTIFICATE", Bytes: der}, "key.pem": {Type: "EC PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o644); err != nil {
			return nil, err
		}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	return roots, nil
}
