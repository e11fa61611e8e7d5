package main

// `slsrelay user add|remove|list|key`: edits the relay users file (see
// engine/users). Passwords and AccessKey secrets are read from a prompt
// without echo, or from stdin when it is not a terminal — never from an
// argument, which `ps` and shell histories would show.

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"golang.org/x/sys/unix"

	"github.com/slsrelay/slsrelay/engine/users"
	"github.com/slsrelay/slsrelay/wal"
)

// runUser runs `slsrelay user ARGS` and returns the exit code. After a
// change the running relay needs a SIGHUP to re-read the file.
func runUser(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	usage := func(w io.Writer, code int) int {
		fmt.Fprintln(w, `usage: slsrelay user add    -file F -project P -key K -topics T[,T*] [-mechanisms M,M] [-iterations N] [-cert-subject S] [-cert-san X,Y] [-no-password] NAME
       slsrelay user remove -file F NAME
       slsrelay user list   -file F
       slsrelay user key    -file F -akid ID (-secret-env VAR | -secret-file PATH | -seal (-wal-key-file PATH | -wal-key-env VAR)) KEYNAME
The password (add) or secret (key -seal) is read from a prompt, or from stdin when it is not a terminal.
Then send the relay SIGHUP to apply the change.`)
		return code
	}
	switch {
	case len(args) == 0:
		return usage(stderr, 2)
	case isHelpFlag(args[0]):
		return usage(stdout, 0)
	}
	fs := flag.NewFlagSet("user "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	failed := 2 // the exit code of a parse that fails
	if slices.ContainsFunc(args[1:], isHelpFlag) {
		// -h/--help: the flags go to stdout, and that is a success.
		fs.SetOutput(stdout)
		failed = 0
	}
	file := fs.String("file", "", "the users file (required)")
	var err error
	switch args[0] {
	case "add":
		project := fs.String("project", "", "SLS Project the user writes to")
		key := fs.String("key", "", "held AccessKey (a name under keys:) its batches are signed with")
		topics := fs.String("topics", "", `Logstores it may write, comma-separated: exact names, "prefix*", or "*"`)
		mechs := fs.String("mechanisms", "SCRAM-SHA-256,SCRAM-SHA-512", "SCRAM credentials to store")
		iter := fs.Int("iterations", users.DefaultIterations, "SCRAM iterations (4096..16384)")
		subject := fs.String("cert-subject", "", "client certificate subject that logs in as the user")
		san := fs.String("cert-san", "", "client certificate SANs that log in as the user, comma-separated")
		noPassword := fs.Bool("no-password", false, "certificate-only user: store no password")
		name, ok := parseUserArgs(fs, args[1:], file, stderr)
		if !ok {
			return failed
		}
		err = addUser(stdin, stderr, *file, name, !*noPassword, users.AddOptions{
			Project: *project, Key: *key, Topics: splitList(*topics), Mechanisms: splitList(*mechs),
			Iterations: *iter, CertSubject: *subject, CertSAN: splitList(*san),
		})
	case "remove":
		name, ok := parseUserArgs(fs, args[1:], file, stderr)
		if !ok {
			return failed
		}
		err = editUsers(*file, func(f *users.File) error { return f.Remove(name) })
	case "list":
		if _, ok := parseArgs(fs, args[1:], file, stderr, 0); !ok {
			return failed
		}
		err = listUsers(*file, stdout)
	case "key":
		akid := fs.String("akid", "", "the AccessKeyId")
		secretEnv := fs.String("secret-env", "", "environment variable the relay reads the secret from")
		secretFile := fs.String("secret-file", "", "file the relay reads the secret (or its sealed form) from")
		seal := fs.Bool("seal", false, "read the secret now and store it sealed with the WAL key (secret_sealed)")
		keyFile := fs.String("wal-key-file", "", "the WAL encryption key file, for -seal")
		keyEnv := fs.String("wal-key-env", "", "environment variable holding the WAL encryption key, for -seal")
		name, ok := parseUserArgs(fs, args[1:], file, stderr)
		if !ok {
			return failed
		}
		k := users.HeldKey{AccessKeyID: *akid, SecretEnv: *secretEnv, SecretFile: *secretFile}
		if *seal {
			k.SecretSealed, err = sealFromPrompt(stdin, stderr, *akid, *keyFile, *keyEnv)
		}
		if err == nil {
			err = editUsers(*file, func(f *users.File) error { return setKey(f, name, k) })
		}
	default:
		return usage(stderr, 2)
	}
	if err != nil {
		fmt.Fprintln(stderr, "slsrelay user:", err)
		return 1
	}
	return 0
}

// parseArgs parses fs and wants n positional arguments and -file.
func parseArgs(fs *flag.FlagSet, args []string, file *string, stderr io.Writer, n int) ([]string, bool) {
	if err := fs.Parse(args); err != nil {
		return nil, false
	}
	if *file == "" || fs.NArg() != n {
		fmt.Fprintf(stderr, "slsrelay %s: -file and %d name(s) are required\n", fs.Name(), n)
		return nil, false
	}
	return fs.Args(), true
}

// parseUserArgs is parseArgs with one positional name.
func parseUserArgs(fs *flag.FlagSet, args []string, file *string, stderr io.Writer) (string, bool) {
	rest, ok := parseArgs(fs, args, file, stderr, 1)
	if !ok {
		return "", false
	}
	return rest[0], true
}

// addUser adds (or replaces) a user, asking for its password if it has one.
func addUser(stdin io.Reader, stderr io.Writer, path, name string, withPassword bool, o users.AddOptions) error {
	password := ""
	if withPassword {
		var err error
		if password, err = readSecret(stdin, stderr, "Password for "+name+": "); err != nil {
			return err
		}
		if password == "" {
			return errors.New("empty password")
		}
	}
	return editUsers(path, func(f *users.File) error { return f.Add(name, password, o) })
}

// editUsers reads the users file, applies edit and writes it back.
func editUsers(path string, edit func(*users.File) error) error {
	f, err := users.ReadFile(path)
	if err != nil {
		return err
	}
	if err := edit(f); err != nil {
		return err
	}
	return users.WriteFile(path, f)
}

func setKey(f *users.File, name string, k users.HeldKey) error {
	n := 0
	for _, s := range []string{k.SecretEnv, k.SecretFile, k.SecretSealed} {
		if s != "" {
			n++
		}
	}
	if k.AccessKeyID == "" || n != 1 {
		return errors.New("key needs -akid and exactly one of -secret-env, -secret-file, -seal")
	}
	if f.Keys == nil {
		f.Keys = map[string]users.HeldKey{}
	}
	f.Keys[name] = k
	return nil
}

func sealFromPrompt(stdin io.Reader, stderr io.Writer, akid, keyFile, keyEnv string) (string, error) {
	var walKey []byte
	var err error
	switch {
	case keyFile != "" && keyEnv == "":
		walKey, err = wal.LoadKeyFile(keyFile)
	case keyEnv != "" && keyFile == "":
		walKey, err = wal.KeyFromEnv(keyEnv)
	default:
		return "", errors.New("-seal needs one of -wal-key-file, -wal-key-env")
	}
	if err != nil {
		return "", err
	}
	secret, err := readSecret(stdin, stderr, "AccessKey secret of "+akid+": ")
	if err != nil {
		return "", err
	}
	if secret == "" {
		return "", errors.New("empty secret")
	}
	return users.SealSecret(walKey, akid, secret)
}

func listUsers(path string, stdout io.Writer) error {
	f, err := users.ReadFile(path)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "USER\tPROJECT\tKEY\tTOPICS\tLOGIN")
	for _, l := range f.List() {
		login := strings.Join(l.Mechanisms, ",")
		if l.Certificate != "" {
			login = strings.TrimPrefix(login+",cert "+l.Certificate, ",")
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", l.Name, l.Project, l.Key, strings.Join(l.Topics, ","), login)
	}
	return w.Flush()
}

// readSecret reads one line: from a prompt without echo when stdin is a
// terminal, else from stdin as it is (a pipe, a file).
func readSecret(stdin io.Reader, stderr io.Writer, prompt string) (string, error) {
	if f, ok := stdin.(*os.File); ok && isTerminal(f) {
		fmt.Fprint(stderr, prompt)
		restore, err := disableEcho(f)
		if err != nil {
			return "", err
		}
		defer func() {
			restore()
			fmt.Fprintln(stderr)
		}()
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", fmt.Errorf("cannot read the secret from stdin: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// isTerminal reports whether f is a terminal (Linux termios, as the
// relay runs on Linux only: the WAL needs fdatasync).
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// disableEcho turns off the terminal's echo until restore is called, so a
// typed password is not shown.
func disableEcho(f *os.File) (restore func(), err error) {
	fd := int(f.Fd())
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	old := *t
	t.Lflag &^= unix.ECHO
	t.Lflag |= unix.ICANON | unix.ISIG
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return nil, err
	}
	return func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, &old) }, nil
}
