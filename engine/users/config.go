package users

// AuthConfig is the daemon configuration's `auth` section: held keys and
// users inline (the File format) and/or a users file; SIGHUP reads the
// section and the file again (Reopen).
//
//	auth:
//	  users_file: /etc/slsrelay/users.yaml
//	  keys: {…}    # as in the users file (optional)
//	  users: {…}   # as in the users file (optional)
type AuthConfig struct {
	UsersFile string `yaml:"users_file,omitempty"`
	File      `yaml:",inline"`
}

// Open loads the section's users; walKey is the WAL's encryption key (nil
// without one), which opens sealed secrets.
func (c *AuthConfig) Open(walKey []byte) (*Directory, error) {
	inline := c.File
	return Open(Options{Inline: &inline, Path: c.UsersFile, EncryptionKey: walKey})
}

// Reopen loads the section as it now reads into d, which Open made from
// an earlier reading: inline keys and users and the users file all take
// effect. A nil section means no users. On error d keeps its users.
func (c *AuthConfig) Reopen(d *Directory) error {
	if c == nil {
		return d.Reopen(nil, "")
	}
	inline := c.File
	return d.Reopen(&inline, c.UsersFile)
}
