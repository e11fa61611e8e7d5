package users

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/slsrelay/slsrelay/engine"
	"github.com/slsrelay/slsrelay/wal"
)

// Options says where the users come from.
type Options struct {
	// Inline is the daemon configuration's auth section, if any.
	Inline *File
	// Path is the users file, re-read by Reload; "" for none.
	Path string
	// EncryptionKey is the WAL's key (wal.Options.EncryptionKey), which
	// opens sealed held secrets.
	EncryptionKey []byte
	// LookupEnv reads environment variables; default os.LookupEnv.
	LookupEnv func(string) (string, bool)
}

func (o *Options) lookupEnv(name string) (string, bool) {
	if o.LookupEnv != nil {
		return o.LookupEnv(name)
	}
	return os.LookupEnv(name)
}

// Directory is the relay's users, as last loaded. It implements
// engine.UserDirectory. Lookups are safe for concurrent use and lock-free;
// Reload swaps the whole set at once.
type Directory struct {
	opts   Options    // what Reload reads; replaced by Reopen, under reload
	reload sync.Mutex // serializes Reload and Reopen
	cur    atomic.Pointer[snapshot]
}

// snapshot is one loaded set of users; never modified once published.
type snapshot struct {
	byName    map[string]*engine.RelayUser
	bySubject map[string]*engine.RelayUser
	bySAN     map[string]*engine.RelayUser
}

// Open loads the users; an error means none are loaded.
func Open(opts Options) (*Directory, error) {
	d := &Directory{opts: opts}
	if err := d.Reload(); err != nil {
		return nil, err
	}
	return d, nil
}

// Reload re-reads the users file (and held secrets from their variables
// and files). On error the users loaded before stay in force. After a
// successful Reload call engine.Server.DropRevokedUsers so that users
// removed or changed lose their connections.
func (d *Directory) Reload() error {
	d.reload.Lock()
	defer d.reload.Unlock()
	snap, err := load(&d.opts)
	if err != nil {
		return err
	}
	d.cur.Store(snap)
	return nil
}

// Reopen is Reload with the auth section as a reload read it again: its
// inline keys and users (nil: none) and its users file ("" for none)
// replace those Open was given, so that SIGHUP applies the whole section
// and not only the file. On error the users and the section loaded before
// stay in force. Call engine.Server.DropRevokedUsers after it as after
// Reload.
func (d *Directory) Reopen(inline *File, path string) error {
	d.reload.Lock()
	defer d.reload.Unlock()
	opts := d.opts
	opts.Inline, opts.Path = inline, path
	snap, err := load(&opts)
	if err != nil {
		return err
	}
	d.opts = opts
	d.cur.Store(snap)
	return nil
}

// load reads the users o describes: the inline section, then the file.
func load(o *Options) (*snapshot, error) {
	merged := &File{Keys: map[string]HeldKey{}, Users: map[string]User{}}
	if o.Inline != nil {
		if err := merge(merged, o.Inline, "the auth section"); err != nil {
			return nil, err
		}
	}
	if o.Path != "" {
		// A missing file is an error here (ReadFile takes it for an
		// empty one, for `user add`): a typo or a lost file must not
		// silently drop every user.
		if _, err := os.Stat(o.Path); err != nil {
			return nil, fmt.Errorf("cannot read users file: %w", err)
		}
		f, err := ReadFile(o.Path)
		if err != nil {
			return nil, err
		}
		if err := merge(merged, f, o.Path); err != nil {
			return nil, err
		}
	}
	return build(merged, o)
}

func merge(into, f *File, where string) error {
	for n, k := range f.Keys {
		if _, dup := into.Keys[n]; dup {
			return fmt.Errorf("%s: key %q is defined twice", where, n)
		}
		into.Keys[n] = k
	}
	for n, u := range f.Users {
		if _, dup := into.Users[n]; dup {
			return fmt.Errorf("%s: user %q is defined twice", where, n)
		}
		into.Users[n] = u
	}
	return nil
}

// build checks every entry and resolves the held keys. Errors name the
// user or key and what is wrong, never a secret.
func build(f *File, o *Options) (*snapshot, error) {
	creds := map[string]wal.Credential{}
	var errs []error
	for name, k := range f.Keys {
		c, err := k.resolve(o)
		if err != nil {
			errs = append(errs, fmt.Errorf("key %q: %w", name, err))
			continue
		}
		creds[name] = c
	}
	s := &snapshot{byName: map[string]*engine.RelayUser{}, bySubject: map[string]*engine.RelayUser{}, bySAN: map[string]*engine.RelayUser{}}
	for name, u := range f.Users {
		ru, err := relayUser(name, u, creds)
		if err != nil {
			errs = append(errs, fmt.Errorf("user %q: %w", name, err))
			continue
		}
		s.byName[name] = ru
		if c := u.Certificate; c != nil {
			if c.Subject != "" {
				if other, dup := s.bySubject[c.Subject]; dup {
					errs = append(errs, fmt.Errorf("users %q and %q: same certificate subject", other.Name, name))
				}
				s.bySubject[c.Subject] = ru
			}
			for _, san := range c.SAN {
				if other, dup := s.bySAN[san]; dup {
					errs = append(errs, fmt.Errorf("users %q and %q: same certificate SAN %q", other.Name, name, san))
				}
				s.bySAN[san] = ru
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("invalid users: %w", err)
	}
	return s, nil
}

func relayUser(name string, u User, creds map[string]wal.Credential) (*engine.RelayUser, error) {
	if name == "" || strings.ContainsAny(name, "\x00") {
		return nil, errors.New("bad user name")
	}
	if u.Project == "" {
		return nil, errors.New("no project")
	}
	cred, ok := creds[u.Key]
	if !ok {
		return nil, fmt.Errorf("key %q is not defined (or could not be read)", u.Key)
	}
	rights, err := parseTopics(u.Topics)
	if err != nil {
		return nil, err
	}
	ru := &engine.RelayUser{
		Name:      name,
		Principal: engine.Principal{Project: u.Project, Credential: cred, User: name, Rights: rights},
		SCRAM:     map[string]engine.SCRAMCredential{},
	}
	if u.SCRAMSHA256 != nil {
		if ru.SCRAM[engine.SCRAMSHA256], err = u.SCRAMSHA256.credential(engine.SCRAMSHA256, sha256.Size); err != nil {
			return nil, err
		}
	}
	if u.SCRAMSHA512 != nil {
		if ru.SCRAM[engine.SCRAMSHA512], err = u.SCRAMSHA512.credential(engine.SCRAMSHA512, sha512.Size); err != nil {
			return nil, err
		}
	}
	if len(ru.SCRAM) == 0 && u.Certificate == nil {
		return nil, errors.New("neither a SCRAM credential nor a certificate: it cannot log in")
	}
	if c := u.Certificate; c != nil && c.Subject == "" && len(c.SAN) == 0 {
		return nil, errors.New("certificate: neither subject nor san")
	}
	return ru, nil
}

// parseTopics turns the topics list into rights: exact Logstore names,
// "prefix*" prefixes, "*" everything.
func parseTopics(topics []string) (*engine.TopicRights, error) {
	if len(topics) == 0 {
		return nil, errors.New(`no topics: list the Logstores it may write ("*" for all)`)
	}
	r := &engine.TopicRights{}
	for _, t := range topics {
		switch {
		case t == "":
			return nil, errors.New("empty topic name")
		case strings.HasSuffix(t, "*"):
			p := strings.TrimSuffix(t, "*")
			if strings.Contains(p, "*") {
				return nil, fmt.Errorf("topic %q: '*' only at the end", t)
			}
			r.Prefixes = append(r.Prefixes, p)
		case strings.Contains(t, "*"):
			return nil, fmt.Errorf("topic %q: '*' only at the end", t)
		default:
			r.Names = append(r.Names, t)
		}
	}
	slices.Sort(r.Names)
	slices.Sort(r.Prefixes)
	return r, nil
}

// User returns the user of that name (engine.UserDirectory).
func (d *Directory) User(name string) (*engine.RelayUser, bool) {
	u, ok := d.cur.Load().byName[name]
	return u, ok
}

// CertUser returns the user a verified client certificate names: by its
// subject (as pkix.Name.String prints it), else by a DNS, e-mail or URI
// SAN (engine.UserDirectory).
func (d *Directory) CertUser(cert *x509.Certificate) (*engine.RelayUser, bool) {
	s := d.cur.Load()
	if u, ok := s.bySubject[cert.Subject.String()]; ok {
		return u, true
	}
	sans := append(append([]string(nil), cert.DNSNames...), cert.EmailAddresses...)
	for _, u := range cert.URIs {
		sans = append(sans, u.String())
	}
	for _, san := range sans {
		if u, ok := s.bySAN[san]; ok {
			return u, true
		}
	}
	return nil, false
}

// Names lists the users, sorted.
func (d *Directory) Names() []string {
	s := d.cur.Load()
	names := make([]string, 0, len(s.byName))
	for n := range s.byName {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
