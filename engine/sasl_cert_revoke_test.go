package engine

import (
	"crypto/tls"
	"testing"

	"github.com/slsrelay/slsrelay/engine/kafkatest"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestSSLCertificateRemapRevokes: a reload after which a client
// certificate maps to no user (or to another one) closes the connections
// that logged in with it, though the user it mapped to is unchanged; a
// certificate still mapped keeps its connection.
func TestSSLCertificateRemapRevokes(t *testing.T) {
	serverTLS, clientTLS, clients := sslListenerTLS(t, "a", "b")
	aCert, bCert := clients[0], clients[1]
	u := heldUser(t, "cert-user", "", hostARights)
	other := heldUser(t, "other-user", "", hostARights)
	users := &swapDirectory{}
	set := func(d testDirectory) { users.cur.Store(&d) }
	set(testDirectory{u.Name: u, other.Name: other, "cert:a client": u, "cert:b client": u})
	srv, err := New(Options{
		Listeners: []ListenerOptions{{Name: "SSL", Protocol: SSL, Bind: "127.0.0.1:0", TLS: serverTLS}},
		Users:     users,
		Logger:    testLogger(),
	}, testCatalog(), &MemoryAppender{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	dial := func(t *testing.T, c tls.Certificate) *kafkatest.TConn {
		tc := kafkatest.DialT(t, srv.Addr("SSL"), clientTLS(c))
		tc.RoundTrip(kmsg.NewPtrApiVersionsRequest()) // logged in and served
		return tc
	}
	f := func(name string, remapped testDirectory, wantClosed int) {
		t.Run(name, func(t *testing.T) {
			set(testDirectory{u.Name: u, other.Name: other, "cert:a client": u, "cert:b client": u})
			a, b := dial(t, aCert), dial(t, bCert) // closed at the subtest's end
			set(remapped)
			// At least: a closed connection of an earlier subtest may
			// not be gone yet. b, still mapped, must stay (below).
			if n := srv.DropRevokedUsers(); n < wantClosed || wantClosed == 0 && n != 0 {
				t.Fatalf("DropRevokedUsers closed %d connections, want %d", n, wantClosed)
			}
			if wantClosed > 0 {
				a.ExpectClosed()
			}
			b.RoundTrip(kmsg.NewPtrApiVersionsRequest()) // still served
		})
	}
	f("unchanged", testDirectory{u.Name: u, other.Name: other, "cert:a client": u, "cert:b client": u}, 0)
	f("certificate unmapped", testDirectory{u.Name: u, other.Name: other, "cert:b client": u}, 1)
	f("certificate mapped to another user", testDirectory{u.Name: u, other.Name: other, "cert:a client": other, "cert:b client": u}, 1)
}
