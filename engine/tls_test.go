package engine

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
)

// The generated CA stays; the server certificate follows the hosts.
func TestEnsureSelfSignedReissuesForNewHosts(t *testing.T) {
	dir := t.TempDir()
	f1, err := EnsureSelfSigned(dir, []string{"localhost", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	ca1, _ := os.ReadFile(f1.CA)
	cert1, _ := os.ReadFile(f1.Cert)
	f2, err := EnsureSelfSigned(dir, []string{"127.0.0.1", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	if cert2, _ := os.ReadFile(f2.Cert); string(cert2) != string(cert1) {
		t.Fatal("same hosts in another order re-issued the certificate")
	}
	f3, err := EnsureSelfSigned(dir, []string{"relay.example", "10.0.0.7"})
	if err != nil {
		t.Fatal(err)
	}
	if ca3, _ := os.ReadFile(f3.CA); string(ca3) != string(ca1) {
		t.Fatal("the CA changed; clients would have to trust a new one")
	}
	pair, err := tls.LoadX509KeyPair(f3.Cert, f3.Key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca1)
	for _, h := range []string{"relay.example", "10.0.0.7"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: h}); err != nil {
			t.Fatalf("%s: %v", h, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost"}); err == nil {
		t.Fatal("the old host is still in the certificate")
	}
}
