package relay

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/slsrelay/slsrelay/engine"
	"github.com/slsrelay/slsrelay/wal"
)

// The checks Probe runs, as `slsrelay check-config` names them in front of
// each message.
const (
	CheckDirs        = "dirs"        // data_dir, wal.dir: directories start-up writes
	CheckKeys        = "keys"        // the WAL key, TLS key pairs, client CAs, the auth section
	CheckCertificate = "certificate" // each TLS listener's certificate names its advertised host
	CheckPorts       = "ports"       // every address start-up binds is free (only with ProbeOptions.Ports)
)

// Finding is one problem Probe found: Check is the check it comes from.
type Finding struct {
	Check string
	Err   error
}

func (f Finding) String() string { return f.Check + ": " + f.Err.Error() }

// ProbeOptions choose Probe's checks beyond those that only read.
type ProbeOptions struct {
	// Ports binds every listen address for a moment: it fails while the
	// relay itself runs, so it is asked for (check-config -probe).
	Ports bool
}

// Probe checks what start-up would find beyond the file itself (which
// LoadConfig checked): that the directories it writes are writable, the
// key files it reads are readable and valid, each TLS certificate names
// the host clients are sent to, and (with o.Ports) that the addresses are
// free. It changes nothing on disk: a directory that does not exist yet is
// judged by the nearest one above it, which start-up would create it in.
// It returns every finding, not only the first.
func (c *Config) Probe(o ProbeOptions) []Finding {
	var out []Finding
	add := func(check string, err error) {
		if err != nil {
			out = append(out, Finding{check, err})
		}
	}
	add(CheckDirs, writableDir("data_dir", c.DataDir))
	if c.WAL.Dir != "" {
		add(CheckDirs, writableDir("wal.dir", c.WAL.Dir))
	}
	add(CheckDirs, c.probeControlSocket())
	key, err := c.probeWALKey()
	add(CheckKeys, err)
	if c.Auth != nil && err == nil {
		if _, err := c.Auth.Open(key); err != nil {
			add(CheckKeys, fmt.Errorf("auth: %w", err))
		}
	}
	for i, l := range c.Listeners {
		if l.TLSFiles == nil || l.Protocol != engine.SASLSSL && l.Protocol != engine.SSL {
			continue
		}
		keysErr, certErr := l.probeTLS()
		add(CheckKeys, prefixErr(fmt.Sprintf("listeners[%d].tls", i), keysErr))
		add(CheckCertificate, prefixErr(fmt.Sprintf("listeners[%d].tls", i), certErr))
	}
	if o.Ports {
		for _, err := range c.probePorts() {
			add(CheckPorts, err)
		}
	}
	return out
}

func prefixErr(where string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", where, err)
}

// writableDir tells whether start-up can create files in dir: dir, or the
// nearest existing directory above it, must be a directory this process
// may write in. access(2) is asked rather than a file written, so the
// check leaves nothing behind; it also answers for root (EROFS on a
// read-only mount).
func writableDir(key, dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("%s %q: %w", key, dir, err)
	}
	for p := abs; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		switch {
		case absent(err) && p != filepath.Dir(p):
			// Under a regular file, stat says ENOTDIR: the file is found
			// one step up.
			continue
		case err != nil:
			return fmt.Errorf("%s %q: %w", key, dir, err)
		case !fi.IsDir():
			return fmt.Errorf("%s %q: %q is not a directory", key, dir, p)
		}
		if err := unix.Access(p, unix.W_OK|unix.X_OK); err != nil {
			return fmt.Errorf("%s %q: cannot write in %q: %w", key, dir, p, err)
		}
		return nil
	}
}

// absent tells whether err says a path does not exist, also for a path
// under a regular file.
func absent(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR)
}

// probeWALKey reads the WAL key as start-up would, without generating
// one: nil and no error when it would be generated.
func (c *Config) probeWALKey() ([]byte, error) {
	switch {
	case c.WAL.EncryptionKeyFile != "":
		k, err := wal.LoadKeyFile(c.WAL.EncryptionKeyFile)
		return k, prefixErr("wal.encryption_key_file", err)
	case c.WAL.EncryptionKeyEnv != "":
		k, err := wal.KeyFromEnv(c.WAL.EncryptionKeyEnv)
		return k, prefixErr("wal.encryption_key_env", err)
	}
	path := filepath.Join(c.DataDir, "wal.key")
	k, err := wal.LoadKeyFile(path)
	if absent(err) {
		// Generated at start (the dirs check covers where).
		return nil, nil
	}
	return k, prefixErr(fmt.Sprintf("generated WAL key %q", path), err)
}

// probeTLS loads a TLS listener's files as start-up does (keysErr) and
// checks that its certificate names the host clients are sent to
// (certErr): Metadata sends them to advertised, or else the bind address,
// and they verify the certificate against that name.
func (l ListenerConfig) probeTLS() (keysErr, certErr error) {
	host := advertisedHost(l.ListenerOptions)
	t := l.TLSFiles
	if t.ClientCA != "" {
		keysErr = readCA(t.ClientCA)
	}
	if t.Cert == "" {
		// self_signed: the certificate is made for self_signed_hosts.
		if host != "" && !listsHost(t.SelfSignedHosts, host) {
			certErr = fmt.Errorf("self_signed_hosts %v do not name the advertised host %q", t.SelfSignedHosts, host)
		}
		return keysErr, certErr
	}
	pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
	if err != nil {
		return errors.Join(keysErr, fmt.Errorf("cert %q, key %q: %w", t.Cert, t.Key, err)), nil
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return errors.Join(keysErr, fmt.Errorf("cert %q: %w", t.Cert, err)), nil
	}
	if host != "" {
		if err := leaf.VerifyHostname(host); err != nil {
			certErr = fmt.Errorf("cert %q does not name the advertised host %q (clients would refuse it): %w", t.Cert, host, err)
		}
	}
	return keysErr, certErr
}

// advertisedHost is the host a listener sends clients to: advertised, or
// the bind host; "" when that is a wildcard, which names no host.
func advertisedHost(o engine.ListenerOptions) string {
	addr := o.Advertised
	if addr == "" {
		addr = o.Bind
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		return ""
	}
	return host
}

func listsHost(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
		if a, b := net.ParseIP(x), net.ParseIP(s); a != nil && b != nil && a.Equal(b) {
			return true
		}
	}
	return false
}

// readCA reads a client CA bundle: at least one PEM certificate.
func readCA(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("client_ca: %w", err)
	}
	for {
		var b *pem.Block
		if b, raw = pem.Decode(raw); b == nil {
			return fmt.Errorf("client_ca %q: no PEM certificate", path)
		}
		if b.Type == "CERTIFICATE" {
			if _, err := x509.ParseCertificate(b.Bytes); err != nil {
				return fmt.Errorf("client_ca %q: %w", path, err)
			}
			return nil
		}
	}
}

// probePorts binds, for a moment, every address start-up binds: the admin
// listener, the Kafka listeners and the stand-in. All are held until the
// last is tried, so two keys naming one port are found too. Port 0 is
// skipped (any free port).
func (c *Config) probePorts() []error {
	type addr struct{ key, listen string }
	var addrs []addr
	if c.Admin.Listen != "" {
		addrs = append(addrs, addr{"admin.listen", c.Admin.Listen})
	}
	for i, l := range c.Listeners {
		addrs = append(addrs, addr{fmt.Sprintf("listeners[%d].bind", i), l.Bind})
	}
	if s := c.SLS.StandIn; s != nil && s.Listen != "" {
		addrs = append(addrs, addr{"sls.stand_in.listen", s.Listen})
	}
	var errs []error
	for _, a := range addrs {
		if _, port, err := net.SplitHostPort(a.listen); err == nil && port == "0" {
			continue
		}
		ln, err := net.Listen("tcp", a.listen)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", a.key, a.listen, err))
			continue
		}
		defer ln.Close()
	}
	return errs
}
