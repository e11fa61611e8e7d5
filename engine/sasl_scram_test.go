package engine

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/slsrelay/slsrelay/wal"
)

// scramTestClient is the client side of SCRAM written from RFC 5802 for
// these tests; it also serves sarama as its SCRAMClient (Begin, Step, Done).
type scramTestClient struct {
	mechanism       string
	user, password  string
	nonce           string
	clientFirstBare string
	serverSig       []byte
	step            int
	// repeatNonce: send the client nonce twice in client-final, as
	// librdkafka before 2.6.1 does.
	repeatNonce bool
}

// scramTestNonce makes each client's nonce differ.
var scramTestNonce atomic.Int64

func (c *scramTestClient) Begin(user, password, _ string) error {
	c.user, c.password, c.step = user, password, 0
	if c.nonce == "" {
		c.nonce = "fyko+d2lbbFgONRv9qkxdawL" + strconv.Itoa(int(scramTestNonce.Add(1)))
	}
	return nil
}

func (c *scramTestClient) Step(challenge string) (string, error) {
	c.step++
	switch c.step {
	case 1:
		name := strings.NewReplacer("=", "=3D", ",", "=2C").Replace(c.user)
		c.clientFirstBare = "n=" + name + ",r=" + c.nonce
		return "n,," + c.clientFirstBare, nil
	case 2:
		var nonce, salt string
		iter := 0
		for _, f := range strings.Split(challenge, ",") {
			switch {
			case strings.HasPrefix(f, "r="):
				nonce = f[2:]
			case strings.HasPrefix(f, "s="):
				salt = f[2:]
			case strings.HasPrefix(f, "i="):
				iter, _ = strconv.Atoi(f[2:])
			}
		}
		if !strings.HasPrefix(nonce, c.nonce) {
			return "", errors.New("server nonce does not extend ours")
		}
		s, err := base64.StdEncoding.DecodeString(salt)
		if err != nil {
			return "", err
		}
		h := scramHash(c.mechanism)
		salted := pbkdf2ForTest(c.mechanism, c.password, s, iter)
		clientKey := hmacSum(h, salted, []byte("Client Key"))
		withoutProof := "c=biws,r=" + nonce
		if c.repeatNonce {
			withoutProof = "c=biws,r=" + c.nonce + nonce
		}
		auth := []byte(c.clientFirstBare + "," + challenge + "," + withoutProof)
		sig := hmacSum(h, hashSum(h, clientKey), auth)
		proof := make([]byte, len(sig))
		for i := range sig {
			proof[i] = clientKey[i] ^ sig[i]
		}
		c.serverSig = hmacSum(h, hmacSum(h, salted, []byte("Server Key")), auth)
		return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
	case 3:
		if challenge != "v="+base64.StdEncoding.EncodeToString(c.serverSig) {
			return "", errors.New("server signature does not verify")
		}
		return "", nil
	}
	return "", errors.New("SCRAM exchange already over")
}

func (c *scramTestClient) Done() bool { return c.step >= 3 }

// testDirectory is a UserDirectory over a fixed map.
type testDirectory map[string]*RelayUser

func (d testDirectory) User(name string) (*RelayUser, bool) { u, ok := d[name]; return u, ok }
func (d testDirectory) CertUser(cert *x509.Certificate) (*RelayUser, bool) {
	u, ok := d["cert:"+cert.Subject.CommonName]
	return u, ok
}

// testUser makes a relay user with both SCRAM credentials of password.
func testUser(t testing.TB, name, password string, rights *TopicRights) *RelayUser {
	t.Helper()
	u := &RelayUser{Name: name, SCRAM: map[string]SCRAMCredential{}, Principal: Principal{
		Project: testProject, User: name, Rights: rights,
		Credential: wal.Credential{AccessKeyID: testAKID, AccessKeySecret: testSecret},
	}}
	for _, m := range []string{SCRAMSHA256, SCRAMSHA512} {
		c, err := DeriveSCRAM(m, password, []byte(fmt.Sprintf("%-16.16s", "salt-"+name)), MinSCRAMIterations)
		if err != nil {
			t.Fatal(err)
		}
		u.SCRAM[m] = c
	}
	return u
}

// TestSCRAMRFC7677Vector checks the exchange of RFC 7677 §3 byte for byte.
func TestSCRAMRFC7677Vector(t *testing.T) {
	salt, _ := base64.StdEncoding.DecodeString("W22ZaJ0SNY7soEsUEjb6gQ==")
	cred, err := DeriveSCRAM(SCRAMSHA256, "pencil", salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	dir := testDirectory{"user": {Name: "user", SCRAM: map[string]SCRAMCredential{SCRAMSHA256: cred}}}
	s := newSCRAMServer(SCRAMSHA256, dir, []byte("decoy"))
	s.serverNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
	first, _, err := s.next([]byte("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"; string(first) != want {
		t.Fatalf("server-first %q, want %q", first, want)
	}
	final, l, err := s.next([]byte("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="))
	if err != nil || l == nil || l.user.Name != "user" {
		t.Fatalf("client-final: login %v, err %v", l, err)
	}
	if want := "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="; string(final) != want {
		t.Fatalf("server-final %q, want %q", final, want)
	}
}

func TestSCRAMExchange(t *testing.T) {
	dir := testDirectory{"host-1": testUser(t, "host-1", "right password", nil), "a,b=c": testUser(t, "a,b=c", "pw", nil),
		"h-librdkafka": testUser(t, "h-librdkafka", "pw", nil)}
	f := func(mechanism, user, password string, tamper func(string) string, wantOK bool) {
		t.Helper()
		c := &scramTestClient{mechanism: mechanism, repeatNonce: strings.HasSuffix(user, "-librdkafka")}
		c.Begin(user, password, "")
		s := newSCRAMServer(mechanism, dir, []byte("decoy"))
		msg, _ := c.Step("")
		challenge, _, err := s.next([]byte(msg))
		if err != nil {
			t.Fatalf("%s %s: client-first refused: %v", mechanism, user, err)
		}
		msg, err = c.Step(string(challenge))
		if err != nil {
			t.Fatalf("%s %s: %v", mechanism, user, err)
		}
		if tamper != nil {
			msg = tamper(msg)
		}
		final, u, err := s.next([]byte(msg))
		if !wantOK {
			var af *authFailure
			if err == nil || !errors.As(err, &af) || u != nil {
				t.Fatalf("%s %s: want an authentication failure, got user %v err %v", mechanism, user, u, err)
			}
			if strings.Contains(err.Error(), password) {
				t.Fatalf("the failure %q repeats the password", err)
			}
			return
		}
		if err != nil || u == nil || u.user.Name != user {
			t.Fatalf("%s %s: got user %v err %v", mechanism, user, u, err)
		}
		if _, err := c.Step(string(final)); err != nil {
			t.Fatalf("%s %s: %v", mechanism, user, err)
		}
	}
	for _, m := range []string{SCRAMSHA256, SCRAMSHA512} {
		f(m, "host-1", "right password", nil, true)
		f(m, "a,b=c", "pw", nil, true)
		f(m, "host-1", "wrong password", nil, false)
		f(m, "nobody", "right password", nil, false)
		f(m, "host-1", "right password", func(s string) string { return strings.Replace(s, "c=biws", "c=eSws", 1) }, false)
		f(m, "host-1", "right password", func(s string) string { return strings.Replace(s, ",p=", "x,p=", 1) }, false)
		// librdkafka < 2.6.1 repeats its nonce (accepted, as Kafka does),
		// but only exactly so.
		f(m, "h-librdkafka", "pw", nil, true)
		f(m, "h-librdkafka", "pw", func(s string) string { return strings.Replace(s, "r=", "r=x", 1) }, false)
	}
}

// TestSCRAMUnknownUserLooksKnown: an unknown user gets a server-first of
// the same shape as a known one's, stable across attempts.
func TestSCRAMUnknownUserLooksKnown(t *testing.T) {
	dir := testDirectory{"host-1": testUser(t, "host-1", "pw", nil)}
	first := func(user string) string {
		s := newSCRAMServer(SCRAMSHA256, dir, []byte("decoy"))
		s.serverNonce = "N"
		b, _, err := s.next([]byte("n,,n=" + user + ",r=abc"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	a, b := first("nobody"), first("nobody")
	if a != b || !strings.Contains(a, ",i=4096") || len(a) != len(first("host-1")) {
		t.Fatalf("unknown user's server-first %q (again %q) differs in shape from a known one's %q", a, b, first("host-1"))
	}
}

func TestParseClientFirst(t *testing.T) {
	f := func(msg, wantUser string, wantErr bool) {
		t.Helper()
		cf, err := parseClientFirst(msg)
		if (err != nil) != wantErr || (!wantErr && cf.user != wantUser) {
			t.Fatalf("parseClientFirst(%q) = %q, %v", msg, cf.user, err)
		}
	}
	f("n,,n=u,r=x", "u", false)
	f("y,,n=u,r=x", "u", false)
	f("n,a=u,n=u,r=x", "u", false)
	f("n,,n=u,r=x,ext=1", "u", false)
	f("n,a=v,n=u,r=x", "", true)
	f("p=tls-unique,,n=u,r=x", "", true)
	f("n,,m=ext,n=u,r=x", "", true)
	f("n,,n=,r=x", "", true)
	f("n,,n=u=1,r=x", "", true)
	f("n,,n=u,r=", "", true)
	f("n,,n=u,r=x,tokenauth=true", "", true)
	f("n,,n="+strings.Repeat("u", maxSCRAMName+1)+",r=x", "", true)
	f("garbage", "", true)
	f("", "", true)
}

// pbkdf2ForTest is Hi() (RFC 5802 §2.2) written out, to check DeriveSCRAM
// against an independent computation rather than against itself.
func pbkdf2ForTest(mechanism, password string, salt []byte, iter int) []byte {
	h := scramHash(mechanism)
	u := hmacSum(h, []byte(password), append(append([]byte(nil), salt...), 0, 0, 0, 1))
	out := append([]byte(nil), u...)
	for i := 1; i < iter; i++ {
		u = hmacSum(h, []byte(password), u)
		for j := range out {
			out[j] ^= u[j]
		}
	}
	return out
}
