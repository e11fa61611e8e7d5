// Package users is the relay's user directory: hosts log in to the relay as
// relay users (SCRAM-SHA-256/512, PLAIN against their password on TLS
// listeners, or a client certificate) and never hold an AccessKey; each user
// maps to a Project, to an AccessKey only the relay holds, and to the
// Logstores it may write.
//
// # The users file
//
// YAML, written by `slsrelay user add|remove|key` and re-read on SIGHUP
// (Directory.Reload), as are the keys and users written inline in the
// configuration's auth section (AuthConfig.Reopen). It holds no password and no AccessKey secret in the
// clear:
//
//	keys:                                # AccessKeys the relay holds, by name
//	  prod:
//	    access_key_id: LTAI5tExampleId   # or access_key_id_env: VAR
//	    # the secret, from exactly one of:
//	    secret_env: SLSRELAY_KEY_PROD    # an environment variable
//	    secret_file: /etc/slsrelay/prod.key  # a file: the secret, or its sealed form
//	    secret_sealed: "slsrelay-sealed:v1:…"  # sealed with the WAL encryption key
//	users:
//	  web-01:
//	    project: my-project              # the SLS Project it writes to
//	    key: prod                        # the held key its batches are signed with
//	    topics: [nginx-access, "app-*"]  # Logstores: exact names; "x*" a prefix; "*" all
//	    scram_sha_256: {salt: …, iterations: 8192, stored_key: …, server_key: …}
//	    scram_sha_512: {salt: …, iterations: 8192, stored_key: …, server_key: …}
//	    certificate:                     # optional: log in by client certificate
//	      subject: "CN=web-01,O=Example" # as Go prints it (RFC 2253 order)
//	      san: [web-01.example.com]      # or any DNS, e-mail or URI SAN
//
// SCRAM credentials are RFC 5802 §3's salted keys (base64): StoredKey =
// H(HMAC(SaltedPassword, "Client Key")) and ServerKey; the password cannot
// be recovered from them, nor can they be replayed as a login.
//
// Sealed secrets are AES-256-GCM under the WAL's encryption key
// (wal.SealSecret, the WAL's own cipher for credential rows), bound to the
// AccessKeyId; `slsrelay user key -seal` makes them.
package users
