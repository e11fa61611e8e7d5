package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slsrelay/slsrelay/engine"
)

// TestCheckConfigStartupChecks: check-config finds what start-up would
// fail on, and names the check each message comes from. The tests run as
// root, for whom every directory is writable, so the unwritable data_dir
// is one under a regular file (as start-up would fail to create it).
func TestCheckConfigStartupChecks(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	regular := write("regular-file", "")
	badKey := write("bad.key", "not a hex key\n")
	goodKey := write("good.key", strings.Repeat("ab", 32)+"\n")
	// Certificates naming relay.example and other.example only.
	named := func(sub string, hosts ...string) engine.SelfSignedFiles {
		t.Helper()
		f, err := engine.EnsureSelfSigned(filepath.Join(dir, sub), hosts)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	relayCert := named("relay-tls", "relay.example")
	otherCert := named("other-tls", "other.example")
	// An address in use, and one that is free (bound and released).
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free := freeLoopbackAddr(t)

	base := "data_dir: " + filepath.Join(dir, "data") + "\nsls: {endpoint: x}\n"
	plain := "listeners: [{protocol: PLAINTEXT, bind: '127.0.0.1:0'}]\n"
	tlsListener := func(cert engine.SelfSignedFiles, advertised string) string {
		return "listeners: [{protocol: SASL_SSL, bind: '127.0.0.1:0', advertised: '" + advertised +
			"', tls: {cert: " + cert.Cert + ", key: " + cert.Key + "}}]\n"
	}
	n := 0
	f := func(body string, wantCode int, wantOut, wantErr string, flags ...string) {
		t.Helper()
		n++
		path := write(filepath.Base(t.Name())+string(rune('a'+n))+".yaml", body)
		var out, errOut bytes.Buffer
		code := runCLI(append(append([]string{"check-config"}, flags...), path), strings.NewReader(""), &out, &errOut)
		if code != wantCode || !strings.Contains(out.String(), wantOut) || !strings.Contains(errOut.String(), wantErr) ||
			wantCode == 0 && errOut.Len() > 0 {
			t.Errorf("check-config %v of\n%s: exit %d, stdout %q, stderr %q; want %d, %q, %q",
				flags, body, code, out.String(), errOut.String(), wantCode, wantOut, wantErr)
		}
	}
	// dirs
	f(base+plain, 0, "ok (config, dirs, keys, certificate)", "")
	f("data_dir: "+filepath.Join(regular, "data")+"\nsls: {endpoint: x}\n"+plain, 1, "",
		`[dirs] data_dir "`+filepath.Join(regular, "data")+`": "`+regular+`" is not a directory`)
	f(base+plain+"wal: {dir: "+filepath.Join(regular, "wal")+"}\n", 1, "", `[dirs] wal.dir "`)
	f(base+plain+"admin: {control_socket: "+filepath.Join(regular, "ctl.sock")+"}\n", 1, "", `[dirs] admin.control_socket's directory "`)
	f(base+plain+"admin: {control_socket: /"+strings.Repeat("x", 120)+"}\n", 1, "", "[dirs] admin.control_socket: ")
	f(base+plain+"admin: {control_socket: "+filepath.Join(dir, "run", "ctl.sock")+"}\n", 0, "ok", "")
	// keys
	f(base+plain+"wal: {encryption_key_file: "+goodKey+"}\n", 0, "ok", "")
	f(base+plain+"wal: {encryption_key_file: "+badKey+"}\n", 1, "", "[keys] wal.encryption_key_file: ")
	f(base+plain+"wal: {encryption_key_file: "+filepath.Join(dir, "none.key")+"}\n", 1, "", "[keys] wal.encryption_key_file: ")
	f(base+plain+"wal: {encryption_key_env: SLSRELAY_TEST_NO_SUCH_KEY}\n", 1, "", "[keys] wal.encryption_key_env: ")
	// A key file that is not the certificate's.
	f(base+"listeners: [{protocol: SASL_SSL, bind: '127.0.0.1:0', advertised: 'relay.example:9093', tls: {cert: "+
		relayCert.Cert+", key: "+otherCert.Key+"}}]\n", 1, "", "[keys] listeners[0].tls: cert ")
	f(base+"listeners: [{protocol: SASL_SSL, bind: '127.0.0.1:0', tls: {cert: "+relayCert.Cert+", key: "+relayCert.Key+
		", client_ca: "+regular+"}}]\n", 1, "", "[keys] listeners[0].tls: client_ca ")
	// certificate
	f(base+tlsListener(relayCert, "relay.example:9093"), 0, "ok", "")
	f(base+tlsListener(otherCert, "relay.example:9093"), 1, "",
		`[certificate] listeners[0].tls: cert "`+otherCert.Cert+`" does not name the advertised host "relay.example"`)
	// Without advertised, clients are sent to the bind address.
	f(base+"listeners: [{protocol: SASL_SSL, bind: '127.0.0.1:0', tls: {cert: "+relayCert.Cert+", key: "+relayCert.Key+"}}]\n",
		1, "", `does not name the advertised host "127.0.0.1"`)
	f(base+"listeners: [{protocol: SASL_SSL, bind: '127.0.0.1:0', advertised: 'relay.example:9093', tls: {self_signed: true}}]\n",
		1, "", `[certificate] listeners[0].tls: self_signed_hosts [localhost 127.0.0.1] do not name the advertised host "relay.example"`)
	f(base+"listeners: [{protocol: SASL_SSL, bind: '127.0.0.1:0', tls: {self_signed: true}}]\n", 0, "ok", "")
	// ports: only with -probe.
	f(base+plain+"admin: {listen: '"+busy.Addr().String()+"'}\n", 0, "ok (config, dirs, keys, certificate)\n", "")
	f(base+plain+"admin: {listen: '"+busy.Addr().String()+"'}\n", 1, "", "[ports] admin.listen "+busy.Addr().String()+": ", "-probe")
	f(base+"listeners: [{protocol: PLAINTEXT, bind: '"+busy.Addr().String()+"'}]\n", 1, "", "[ports] listeners[0].bind ", "-probe")
	f(base+plain+"admin: {listen: '"+free+"'}\n", 0, "ok (config, dirs, keys, certificate, ports)", "", "-probe")
	// Two keys naming one port.
	f(base+"listeners: [{protocol: PLAINTEXT, bind: '"+free+"'}]\nadmin: {listen: '"+free+"'}\n", 1, "", "[ports] listeners[0].bind "+free, "-probe")
	// Every finding, each with its check.
	var out, errOut bytes.Buffer
	path := write("many.yaml", "data_dir: "+filepath.Join(regular, "data")+"\nsls: {endpoint: x}\n"+tlsListener(otherCert, "relay.example:1")+
		"admin: {listen: '"+busy.Addr().String()+"'}\n")
	if code := runCLI([]string{"check-config", "-probe", path}, nil, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "[dirs] ") || !strings.Contains(errOut.String(), "[certificate] ") || !strings.Contains(errOut.String(), "[ports] ") {
		t.Errorf("check-config -probe: exit %d, stderr %q; want every finding", code, errOut.String())
	}
}
