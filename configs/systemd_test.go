package configs_test

import (
	"bufio"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const unitFile = "systemd/slsrelay.service"

// serviceSettings returns the [Service] settings of a unit file, each key
// with all its values in order.
func serviceSettings(t *testing.T, path string) map[string][]string {
	t.Helper()
	settings := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(readFile(t, path)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			k, v, _ := strings.Cut(line, "=")
			settings[k] = append(settings[k], v)
		}
	}
	return settings
}

// TestUnitHardening: the sandbox settings a network daemon that writes
// only its state directory can have are all there, and no capability is
// granted.
func TestUnitHardening(t *testing.T) {
	s := serviceSettings(t, unitFile)
	f := func(key, want string) {
		t.Helper()
		for _, v := range s[key] {
			if v == want {
				return
			}
		}
		t.Errorf("%s: %s=%q missing (has %q)", unitFile, key, want, s[key])
	}
	f("SystemCallFilter", "@system-service")
	f("SystemCallFilter", "~@privileged @resources")
	f("SystemCallArchitectures", "native")
	f("ProtectProc", "invisible")
	f("ProcSubset", "pid")
	f("RemoveIPC", "yes")
	f("PrivateMounts", "yes")
	f("PrivateIPC", "yes")
	f("PrivateUsers", "yes")
	f("PrivateTmp", "yes")
	f("PrivateDevices", "yes")
	f("ProtectSystem", "strict")
	f("ProtectHome", "yes")
	f("NoNewPrivileges", "yes")
	f("MemoryDenyWriteExecute", "yes")
	f("RestrictNamespaces", "yes")
	f("CapabilityBoundingSet", "")
	f("AmbientCapabilities", "")
	f("StateDirectory", "slsrelay")
}

var (
	exposureRE      = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)
	quotedScoreRE   = regexp.MustCompile(`\(systemd (\d+)\) scores this unit ([0-9.]+)`)
	systemdVersionR = regexp.MustCompile(`^systemd (\d+)`)
)

// TestUnitSecurityScore: `systemd-analyze security --offline=yes` scores
// the unit as its comment says. With the systemd version the comment names
// the score must match exactly (so the comment stays true); with another
// version, whose weights may differ, it must not be worse.
func TestUnitSecurityScore(t *testing.T) {
	analyze := needTool(t, "systemd-analyze", "systemd")
	m := quotedScoreRE.FindStringSubmatch(readFile(t, unitFile))
	if m == nil {
		t.Fatalf("%s: no comment of the form \"(systemd N) scores this unit X\"", unitFile)
	}
	quotedVersion, quoted := m[1], mustFloat(t, m[2])

	out := run(t, ".", analyze, "security", "--offline=yes", unitFile)
	sm := exposureRE.FindStringSubmatch(out)
	if sm == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	score := mustFloat(t, sm[1])
	version := ""
	if vm := systemdVersionR.FindStringSubmatch(run(t, ".", analyze, "--version")); vm != nil {
		version = vm[1]
	}
	t.Logf("systemd %s scores %s at %.1f (the comment says %.1f with systemd %s)", version, unitFile, score, quoted, quotedVersion)
	switch {
	case version == quotedVersion && score != quoted:
		t.Errorf("score %.1f, but the unit's comment says %.1f: update the comment or the unit\n%s", score, quoted, out)
	case score > quoted:
		t.Errorf("score %.1f is worse than the %.1f the unit's comment promises\n%s", score, quoted, out)
	}
}

func mustFloat(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
