package engine

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"
)

// CertReloader serves a certificate and key from files, and optionally
// the CA client certificates must be signed by, and can re-read them all
// (on SIGHUP) without dropping connections: new handshakes get the new
// certificate and are checked against the new CA. Safe for concurrent use.
type CertReloader struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]

	clientCAFile string // set once by Config
	clientCAs    atomic.Pointer[x509.CertPool]
}

// NewCertReloader reads certFile and keyFile (PEM).
func NewCertReloader(certFile, keyFile string) (*CertReloader, error) {
	r := &CertReloader{certFile: certFile, keyFile: keyFile}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload re-reads the files; what fails to load is kept as it was.
func (r *CertReloader) Reload() error {
	var errs []error
	if c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile); err != nil {
		errs = append(errs, fmt.Errorf("cannot load TLS certificate %q and key %q: %w", r.certFile, r.keyFile, err))
	} else {
		r.cert.Store(&c)
	}
	if r.clientCAFile != "" {
		if pool, err := loadCAPool(r.clientCAFile); err != nil {
			errs = append(errs, err)
		} else {
			r.clientCAs.Store(pool)
		}
	}
	return errors.Join(errs...)
}

func loadCAPool(file string) (*x509.CertPool, error) {
	pemBytes, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("cannot read client CA %q: %w", file, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("client CA %q holds no PEM certificate", file)
	}
	return pool, nil
}

// Config returns a server TLS config (TLS 1.2+) using the reloader. With
// clientCAFile set, clients must present a certificate signed by it; the
// file is read again by Reload. Call it once per reloader.
func (r *CertReloader) Config(clientCAFile string) (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return r.cert.Load(), nil
		},
	}
	if clientCAFile == "" {
		return cfg, nil
	}
	pool, err := loadCAPool(clientCAFile)
	if err != nil {
		return nil, err
	}
	r.clientCAFile = clientCAFile
	r.clientCAs.Store(pool)
	cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	// Resumed sessions too: VerifyConnection runs on every handshake, and
	// checks the client's chain against the CA as last loaded whatever
	// the toolchain does about resumption after ClientCAs change.
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("tls: client certificate required")
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
			Roots: r.clientCAs.Load(), Intermediates: inter,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		})
		return err
	}
	// Each handshake checks against the CA as last loaded.
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		c := cfg.Clone()
		c.GetConfigForClient = nil
		c.ClientCAs = r.clientCAs.Load()
		return c, nil
	}
	return cfg, nil
}

// SelfSignedFiles are the files EnsureSelfSigned keeps in its directory.
type SelfSignedFiles struct {
	CA    string // ca.crt: give it to clients as their trusted CA
	CAKey string // ca.key: kept to re-issue the certificate when the hosts change
	Cert  string // server.crt
	Key   string // server.key
}

// EnsureSelfSigned keeps a private CA and a server certificate for hosts
// (DNS names or IPs) in dir and returns their paths. The CA is made once;
// the server certificate is re-issued by it when the hosts change, so
// clients keep trusting the same ca.crt. It serves the embedded default's
// SASL_SSL listener.
func EnsureSelfSigned(dir string, hosts []string) (SelfSignedFiles, error) {
	f := SelfSignedFiles{
		CA: filepath.Join(dir, "ca.crt"), CAKey: filepath.Join(dir, "ca.key"),
		Cert: filepath.Join(dir, "server.crt"), Key: filepath.Join(dir, "server.key"),
	}
	if len(hosts) == 0 {
		return f, errors.New("no host names for the self-signed certificate")
	}
	if pair, err := tls.LoadX509KeyPair(f.Cert, f.Key); err == nil && coversHosts(pair, hosts) {
		if _, err := os.Stat(f.CA); err == nil {
			return f, nil
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return f, fmt.Errorf("cannot create %q: %w", dir, err)
	}
	caCert, caKey, err := loadCA(f)
	if err != nil {
		if caCert, caKey, err = newCA(f); err != nil {
			return f, err
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return f, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(2, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return f, fmt.Errorf("cannot create server certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return f, err
	}
	return f, errors.Join(
		writePEM(f.Cert, "CERTIFICATE", der, 0o644),
		writePEM(f.Key, "PRIVATE KEY", keyDER, 0o600),
	)
}

// coversHosts reports whether the certificate names exactly hosts.
func coversHosts(pair tls.Certificate, hosts []string) bool {
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return false
	}
	var have []string
	have = append(have, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		have = append(have, ip.String())
	}
	want := make([]string, 0, len(hosts))
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			h = ip.String()
		}
		want = append(want, h)
	}
	slices.Sort(have)
	slices.Sort(want)
	return slices.Equal(have, want)
}

func loadCA(f SelfSignedFiles) (*x509.Certificate, crypto.Signer, error) {
	pair, err := tls.LoadX509KeyPair(f.CA, f.CAKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, nil, err
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, nil, errors.New("CA key cannot sign")
	}
	return cert, signer, nil
}

func newCA(f SelfSignedFiles) (*x509.Certificate, crypto.Signer, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "slsrelay local CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot create CA certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(caKey)
	if err != nil {
		return nil, nil, err
	}
	if err := errors.Join(writePEM(f.CA, "CERTIFICATE", der, 0o644), writePEM(f.CAKey, "PRIVATE KEY", keyDER, 0o600)); err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, caKey, err
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	b := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(path, b, mode); err != nil {
		return fmt.Errorf("cannot write %q: %w", path, err)
	}
	return nil
}
