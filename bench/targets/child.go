package targets

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// The relay and the SLS stand-in run as child processes of the bench's own
// executable (cmd/slsbench, or a test binary whose TestMain hands the flag
// over), so the CPU and memory /proc shows for each are its own: the child
// is started with its flag, prints a JSON line saying where it listens,
// may print more lines, and shuts down when its stdin closes.

// childStartWait bounds the wait for a child's first line: a child that
// hangs before it is killed, as a Ctrl-C in the terminal no longer reaches
// it (its own process group). A variable for tests.
var childStartWait = 2 * time.Minute

// child is a started child process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{} // closed when its stdout ends
}

// startChild runs exe with args (env added to this process's environment)
// and decodes the child's first stdout line into info; each later line
// goes to onLine (if set) until the child's stdout ends.
func startChild(name, exe string, args, env []string, info any, onLine func([]byte)) (*child, error) {
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	// A process group of its own: a Ctrl-C in the terminal signals the
	// whole foreground group, and the bench catches it to end the run and
	// still check delivery through the children. A child stops only when
	// its stdin closes: the bench closes it, or dies (no orphan either way).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("cannot start the %s child: %w", name, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("cannot start the %s child: %w", name, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start the %s child: %w", name, err)
	}
	sc := bufio.NewScanner(stdout)
	first := make(chan bool, 1) // the first line came and is info
	go func() { first <- sc.Scan() && json.Unmarshal(sc.Bytes(), info) == nil }()
	started, read := false, false
	select {
	case started = <-first:
		read = true
	case <-time.After(childStartWait):
	}
	if !started {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
		if !read {
			<-first // its stdout is closed now: the reader is done with info
		}
		return nil, fmt.Errorf("%s child did not start (it said nothing valid within %v)", name, childStartWait)
	}
	c := &child{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for sc.Scan() {
			if onLine != nil {
				onLine(sc.Bytes())
			}
		}
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// close asks the child to shut down (closing its stdin) and waits for it;
// after 30 s it is killed.
func (c *child) close() error {
	c.stdin.Close()
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
	}
	return c.cmd.Wait()
}

// stdinClosed is, in a child, closed when the parent closes its stdin
// (or dies): the child's signal to shut down.
func stdinClosed() <-chan struct{} {
	done := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(done)
	}()
	return done
}

// RunChild runs the child that args (os.Args) ask for, if they ask for
// one: the relay (ChildFlag spec) or the stand-in (StandInChildFlag).
// cmd/slsbench's main and the tests' TestMain call it first, so the bench's
// executable and a test binary start children the same way.
func RunChild(args []string) (isChild bool, err error) {
	switch {
	case len(args) == 3 && args[1] == ChildFlag:
		return true, RunRelayChild(args[2])
	case len(args) == 2 && args[1] == StandInChildFlag:
		return true, RunStandInChild()
	}
	return false, nil
}

// ExitIfChild runs the child os.Args ask for, if they ask for one (see
// RunChild), and then exits: 0 when it shut down cleanly, 1 with its error
// on stderr. A main or TestMain calls it first; otherwise it returns.
func ExitIfChild() {
	isChild, err := RunChild(os.Args)
	if !isChild {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	os.Exit(0)
}
