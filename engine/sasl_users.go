package engine

import (
	"bytes"
	"crypto/x509"
	"slices"
	"strings"
)

// RelayUser is one relay user as the engine authenticates it: its
// credentials and who it writes as. Shippers log in as relay users and
// never hold an AccessKey: the user's Principal carries the Project and the
// relay-held AccessKey its batches are signed with, and the Logstores it may
// write. Values are read-only once a UserDirectory hands them out.
type RelayUser struct {
	Name string
	// Principal is who the user writes as; its User field is Name.
	Principal Principal
	// SCRAM holds the user's credentials by mechanism (SCRAMSHA256,
	// SCRAMSHA512); a mechanism without one fails, as for an unknown user.
	SCRAM map[string]SCRAMCredential
}

// UserDirectory looks relay users up. Implementations (engine/users) must be
// safe for concurrent use and answer from memory.
type UserDirectory interface {
	// User returns the user of that name.
	User(name string) (*RelayUser, bool)
	// CertUser returns the user a verified client certificate maps to
	// (by subject or SAN).
	CertUser(cert *x509.Certificate) (*RelayUser, bool)
}

// TopicRights are the Logstores a relay user may write: exact names and
// name prefixes. A nil *TopicRights allows every Logstore (principals that
// are not relay users: the catalog alone decides, as on SLS's endpoint).
type TopicRights struct {
	Names    []string
	Prefixes []string
}

// Allows reports whether logstore is among the rights.
func (r *TopicRights) Allows(logstore string) bool {
	if r == nil {
		return true
	}
	if slices.Contains(r.Names, logstore) {
		return true
	}
	for _, p := range r.Prefixes {
		if strings.HasPrefix(logstore, p) {
			return true
		}
	}
	return false
}

func (r *TopicRights) equal(o *TopicRights) bool {
	if r == nil || o == nil {
		return r == o
	}
	return slices.Equal(r.Names, o.Names) && slices.Equal(r.Prefixes, o.Prefixes)
}

// mayWrite reports whether the principal's rights allow logstore; it is
// asked before the catalog, so a refused topic costs SLS nothing.
func (p *Principal) mayWrite(logstore string) bool { return p.Rights.Allows(logstore) }

// sameUser reports whether b grants what a granted: same project, key,
// rights and credentials. A reload that changes any of them closes the
// user's connections, which log in again under the new entry.
func sameUser(a, b *RelayUser) bool {
	if a.Name != b.Name || a.Principal.Project != b.Principal.Project ||
		a.Principal.Credential != b.Principal.Credential || !a.Principal.Rights.equal(b.Principal.Rights) ||
		len(a.SCRAM) != len(b.SCRAM) {
		return false
	}
	for m, ca := range a.SCRAM {
		cb, ok := b.SCRAM[m]
		if !ok || ca.Iterations != cb.Iterations || !bytes.Equal(ca.Salt, cb.Salt) ||
			!bytes.Equal(ca.StoredKey, cb.StoredKey) || !bytes.Equal(ca.ServerKey, cb.ServerKey) {
			return false
		}
	}
	return true
}
