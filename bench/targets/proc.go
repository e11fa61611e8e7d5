package targets

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ProcSample is a process's CPU time and memory, from /proc.
type ProcSample struct {
	CPUSeconds float64 // user + system
	RSSBytes   int64
	PeakRSS    int64 // VmHWM
}

const clkTck = 100 // USER_HZ on Linux

// ReadProc samples process pid (0: this process).
func ReadProc(pid int) (ProcSample, error) {
	if pid == 0 {
		pid = os.Getpid()
	}
	var s ProcSample
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// Fields after the command name (which may hold spaces) start at ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	if len(f) < 13 {
		return s, fmt.Errorf("short /proc stat")
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	s.CPUSeconds = (ut + st) / clkTck
	fh, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		line := sc.Text()
		for _, k := range []struct {
			name string
			dst  *int64
		}{{"VmRSS:", &s.RSSBytes}, {"VmHWM:", &s.PeakRSS}} {
			if strings.HasPrefix(line, k.name) {
				kb, _ := strconv.ParseInt(strings.Fields(line[len(k.name):])[0], 10, 64)
				*k.dst = kb << 10
			}
		}
	}
	return s, nil
}
