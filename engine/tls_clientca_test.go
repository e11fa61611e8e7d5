package engine

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestClientCAReload: a listener that requires client certificates checks
// them against client_ca as last loaded; Reload (SIGHUP) swaps the CA for
// new handshakes, resumed sessions included, and a client_ca file that
// cannot be read keeps the previous one.
func TestClientCAReload(t *testing.T) {
	dir := t.TempDir()
	server, err := EnsureSelfSigned(filepath.Join(dir, "server"), []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	caA, certA := clientCA(t, "client CA A")
	caB, certB := clientCA(t, "client CA B")
	caFile := filepath.Join(dir, "client-ca.pem")
	write := func(b []byte) {
		if err := os.WriteFile(caFile, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(caA)
	certs, err := NewCertReloader(server.Cert, server.Key)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := certs.Config(caFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.(*tls.Conn).Handshake()
				c.Read(make([]byte, 1)) // until the client closes
			}()
		}
	}()
	rootPEM, err := os.ReadFile(server.CA)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(rootPEM)
	// accepted tells whether the server took the client certificate: with
	// TLS 1.3 a refusal arrives after the client's handshake, on read.
	// A session cache per client: a client resuming a session its
	// certificate got under the old CA must still be checked against the
	// new one.
	caches := map[*tls.Certificate]tls.ClientSessionCache{&certA: tls.NewLRUClientSessionCache(4), &certB: tls.NewLRUClientSessionCache(4)}
	resumed := 0
	accepted := func(cert *tls.Certificate) bool {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "localhost", Certificates: []tls.Certificate{*cert}, ClientSessionCache: caches[cert]})
		if err != nil {
			return false
		}
		defer c.Close()
		if c.ConnectionState().DidResume {
			resumed++
		}
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, err = c.Read(make([]byte, 1))
		ne, ok := err.(net.Error)
		return ok && ne.Timeout() // still open: accepted
	}
	f := func(step string, wantA, wantB bool) {
		t.Helper()
		if a, b := accepted(&certA), accepted(&certB); a != wantA || b != wantB {
			t.Fatalf("%s: client of CA A accepted %v, of CA B %v; want %v, %v", step, a, b, wantA, wantB)
		}
	}
	f("client_ca A", true, false)
	write(caB)
	if err := certs.Reload(); err != nil {
		t.Fatal(err)
	}
	f("after reload to B", false, true)
	write([]byte("not a certificate"))
	if err := certs.Reload(); err == nil {
		t.Fatal("reload of an unreadable client CA reported no error")
	}
	f("after a failed reload", false, true)
	if resumed == 0 {
		t.Fatal("no client resumed a session: the test does not cover resumption")
	}
}

// clientCA makes a CA and a client certificate it signed: the CA as PEM,
// the client's key pair for tls.
func clientCA(t *testing.T, name string) ([]byte, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: name + " client"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
