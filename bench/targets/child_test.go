package targets

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ctrlCBenchEnv makes this test binary, re-executed, play the bench for
// TestChildOutlivesCtrlC (TestMain runs ctrlCBench).
const ctrlCBenchEnv = "SLSBENCH_TEST_CTRLC_BENCH"

// A Ctrl-C in the terminal sends SIGINT to the whole foreground process
// group. cmd/slsbench catches it to end the run early and still check
// delivery and write its report, so its children must outlive it: they
// stop when the bench closes their stdin, not on the terminal's signal.
// Here a bench process (this binary, in a process group of its own as a
// shell's job is) starts a stand-in child, its group gets SIGINT, and the
// bench then asks the stand-in for its count.
func TestChildOutlivesCtrlC(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bench := exec.Command(exe, "-test.run=^$")
	bench.Env = append(os.Environ(), ctrlCBenchEnv+"=1")
	bench.Stderr = os.Stderr
	bench.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := bench.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := bench.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bench.Process.Kill(); _ = bench.Wait() })
	sc := bufio.NewScanner(out)
	if !sc.Scan() {
		t.Fatal("the bench process said nothing")
	}
	standInPID, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "stand-in "))
	if err != nil {
		t.Fatalf("the bench process said %q", sc.Text())
	}
	// As the terminal does: the bench's whole process group.
	if err := syscall.Kill(-bench.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if !sc.Scan() {
		t.Fatal("the bench process ended without a word after SIGINT")
	}
	if got := sc.Text(); got != "stand-in answered" {
		t.Errorf("after Ctrl-C, the bench asked its stand-in child: %s", got)
	}
	if err := bench.Wait(); err != nil {
		t.Errorf("bench process: %v", err)
	}
	if _, err := ReadProc(standInPID); err == nil {
		t.Errorf("the stand-in child (pid %d) outlived the bench's Close", standInPID)
	}
}

// ctrlCBench is the bench's side of TestChildOutlivesCtrlC: catch SIGINT
// as cmd/slsbench does, start a stand-in child, say its pid, and once
// SIGINT came, say whether the stand-in still answers, then close it.
func ctrlCBench() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	exe, err := os.Executable()
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	s, err := StartStandInChild(exe)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Printf("stand-in %d\n", s.Info.PID)
	select {
	case <-ctx.Done():
	case <-time.After(30 * time.Second):
		fmt.Println("no SIGINT came")
		os.Exit(1)
	}
	// The terminal's SIGINT reaches every process of the group at once:
	// a stand-in that dies of it is gone well before this.
	time.Sleep(300 * time.Millisecond)
	if _, err := s.LogCount(Project, Topic); err != nil {
		fmt.Printf("stand-in gone: %v\n", err)
	} else {
		fmt.Println("stand-in answered")
	}
	_ = s.Close()
	os.Exit(0)
}

// A child that never says where it listens is killed and reaped after
// childStartWait, not waited for as long as it lives: in its own process
// group, a Ctrl-C no longer ends it for the bench. One that exits without
// saying it fails at once.
func TestChildSilentAtStart(t *testing.T) {
	defer func(w time.Duration) { childStartWait = w }(childStartWait)
	childStartWait = 200 * time.Millisecond
	f := func(exe string, args ...string) {
		t.Helper()
		began := time.Now()
		var info StandInInfo
		if _, err := startChild("silent", exe, args, nil, &info, nil); err == nil {
			t.Fatalf("%s: a child that said nothing started", exe)
		}
		if took := time.Since(began); took > 5*time.Second {
			t.Errorf("%s: startChild waited %v for a child that said nothing", exe, took.Round(time.Second))
		}
		for _, pid := range childrenOfThisProcess(t) {
			if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) == exe {
				t.Errorf("%s: the silent child (pid %d) is still this process's child", exe, pid)
			}
		}
	}
	f("sleep", "30")
	f("true")
}

// childrenOfThisProcess lists the pids of this process's children, zombies
// included (/proc/self/task/*/children).
func childrenOfThisProcess(t *testing.T) []int {
	t.Helper()
	files, err := filepath.Glob("/proc/self/task/*/children")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread ended
		}
		for _, s := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(s); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}
