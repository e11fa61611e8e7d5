package engine

import (
	"strings"
	"testing"
)

// FuzzSCRAM feeds arbitrary client-first and client-final messages to the
// SCRAM server of a directory with one user. Nothing may panic, and no
// made-up final message may authenticate: a success needs the proof, which
// only the password gives (the fuzzer cannot find it).
func FuzzSCRAM(f *testing.F) {
	f.Add("n,,n=host-1,r=abc", "c=biws,r=abcN,p=AAAA")
	f.Add("y,a=host-1,n=host-1,r=abc,ext=1", "c=eSxhPWhvc3QtMSw=,r=abcN,x=1,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
	f.Add("n,,n=a=2Cb=3Dc,r=x", "c=biws,r=xN,p=")
	f.Add("p=tls-unique,,n=u,r=x", "c=,r=,p=")
	f.Add("n,,m=x,n=u,r=x", ",p=")
	f.Add("", "")
	dir := testDirectory{"host-1": testUser(f, "host-1", "secret password", nil)}
	f.Fuzz(func(t *testing.T, first, final string) {
		for _, m := range []string{SCRAMSHA256, SCRAMSHA512} {
			s := newSCRAMServer(m, dir, []byte("decoy"))
			s.serverNonce = "N"
			reply, _, err := s.next([]byte(first))
			if err != nil {
				continue
			}
			if !strings.HasPrefix(string(reply), "r=") {
				t.Fatalf("server-first %q", reply)
			}
			if _, u, err := s.next([]byte(final)); err == nil || u != nil {
				t.Fatalf("a made-up client-final authenticated %v (first %q final %q)", u, first, final)
			}
			if _, u, err := s.next([]byte(final)); err == nil || u != nil {
				t.Fatal("a third message was accepted")
			}
		}
	})
}
