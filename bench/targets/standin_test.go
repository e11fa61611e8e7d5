package targets

import (
	"os"
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/bench/slsfake"
)

// TestMain lets the test binary be the bench's executable for the
// children (RunChild), as cmd/slsbench is.
func TestMain(m *testing.M) {
	ExitIfChild()
	if os.Getenv(ctrlCBenchEnv) != "" {
		ctrlCBench()
	}
	os.Exit(m.Run())
}

// The stand-in child serves the bench's project in a process of its own,
// answers its control API, and exits when the bench closes it.
func TestStandInChild(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s, err := StartStandInChild(exe)
	if err != nil {
		t.Fatal(err)
	}
	if s.Info.PID == os.Getpid() || s.Info.PID == 0 {
		t.Fatalf("stand-in pid %d, the bench's %d", s.Info.PID, os.Getpid())
	}
	if _, err := ReadProc(s.Info.PID); err != nil {
		t.Fatalf("stand-in process: %v", err)
	}
	if n, err := s.LogCount(Project, Topic); err != nil || n != 0 {
		t.Fatalf("LogCount = %d, %v", n, err)
	}
	if err := s.Outage(time.Millisecond, slsfake.OutageError); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := ReadProc(s.Info.PID); err == nil {
		t.Fatal("the stand-in process outlived its Close")
	}
	// Not a child invocation: the caller runs as itself.
	if isChild, _ := RunChild([]string{"slsbench", "-scenario", "steady"}); isChild {
		t.Fatal("slsbench's own flags taken for a child's")
	}
}
