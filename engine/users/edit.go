package users

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/slsrelay/slsrelay/engine"
)

// AddOptions is what `user add` records besides the password.
type AddOptions struct {
	Project string
	Key     string   // a held key of the file (or the auth section)
	Topics  []string // see the package documentation
	// Mechanisms to store credentials for; default both SCRAM ones.
	Mechanisms []string
	Iterations int // default DefaultIterations
	// Certificate, optional: a client certificate that logs in as the user.
	CertSubject string
	CertSAN     []string
}

// Add adds user name with credentials derived from password (not kept), or
// replaces the user of that name (a new password, rights or mapping). An
// empty password stores no SCRAM credential: a certificate-only user.
func (f *File) Add(name, password string, o AddOptions) error {
	if name == "" || strings.ContainsAny(name, "\x00") {
		return errors.New("bad user name")
	}
	if o.Project == "" || o.Key == "" {
		return errors.New("a user needs a project and a key")
	}
	if _, err := parseTopics(o.Topics); err != nil {
		return err
	}
	if o.Iterations == 0 {
		o.Iterations = DefaultIterations
	}
	if len(o.Mechanisms) == 0 {
		o.Mechanisms = []string{engine.SCRAMSHA256, engine.SCRAMSHA512}
	}
	u := User{Project: o.Project, Key: o.Key, Topics: o.Topics}
	if password != "" {
		for _, m := range o.Mechanisms {
			c, err := NewSCRAM(m, password, o.Iterations)
			if err != nil {
				return err
			}
			switch m {
			case engine.SCRAMSHA256:
				u.SCRAMSHA256 = c
			case engine.SCRAMSHA512:
				u.SCRAMSHA512 = c
			}
		}
	}
	if o.CertSubject != "" || len(o.CertSAN) > 0 {
		u.Certificate = &Certificate{Subject: o.CertSubject, SAN: o.CertSAN}
	}
	if u.SCRAMSHA256 == nil && u.SCRAMSHA512 == nil && u.Certificate == nil {
		return errors.New("a user needs a password or a certificate")
	}
	if f.Users == nil {
		f.Users = map[string]User{}
	}
	f.Users[name] = u
	return nil
}

// Remove deletes user name.
func (f *File) Remove(name string) error {
	if _, ok := f.Users[name]; !ok {
		return fmt.Errorf("no user %q", name)
	}
	delete(f.Users, name)
	return nil
}

// Listing is what `user list` shows of a user: no credential.
type Listing struct {
	Name, Project, Key string
	Topics             []string
	Mechanisms         []string
	Certificate        string // subject and SANs, "" for none
}

// List describes the users, sorted by name.
func (f *File) List() []Listing {
	var out []Listing
	for name, u := range f.Users {
		l := Listing{Name: name, Project: u.Project, Key: u.Key, Topics: u.Topics}
		if u.SCRAMSHA256 != nil {
			l.Mechanisms = append(l.Mechanisms, engine.SCRAMSHA256)
		}
		if u.SCRAMSHA512 != nil {
			l.Mechanisms = append(l.Mechanisms, engine.SCRAMSHA512)
		}
		if c := u.Certificate; c != nil {
			l.Certificate = strings.TrimSpace(c.Subject + " " + strings.Join(c.SAN, " "))
		}
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b Listing) int { return strings.Compare(a.Name, b.Name) })
	return out
}
