package configs_test

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"
)

// apacheLicenseSHA256 is the SHA-256 of the Apache License 2.0 text as the
// Apache Software Foundation publishes it (LICENSE-2.0.txt, also Debian's
// /usr/share/common-licenses/Apache-2.0).
const apacheLicenseSHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"

// TestPackagingDocs: the license is Apache 2.0 word for word, the
// changelog is in Keep a Changelog's shape, the README links both, and
// the image carries both under /usr/share/doc/slsrelay/ (its build
// context lets them in).
func TestPackagingDocs(t *testing.T) {
	sum := sha256.Sum256([]byte(readFile(t, "packaging/LICENSE")))
	if got := hex.EncodeToString(sum[:]); got != apacheLicenseSHA256 {
		t.Errorf("packaging/LICENSE is not the Apache License 2.0 text (sha256 %s)", got)
	}

	cl := readFile(t, "packaging/CHANGELOG.md")
	for _, want := range []string{"# Changelog", "[Keep a Changelog](https://keepachangelog.com/en/1.1.0/)", "## [Unreleased]", "### Added"} {
		if !strings.Contains(cl, want) {
			t.Errorf("CHANGELOG.md lacks %q", want)
		}
	}
	// Keep a Changelog's change types, and nothing else, under a version.
	types := map[string]bool{"Added": true, "Changed": true, "Deprecated": true, "Removed": true, "Fixed": true, "Security": true}
	for _, m := range regexp.MustCompile(`(?m)^### (.*)$`).FindAllStringSubmatch(cl, -1) {
		if !types[m[1]] {
			t.Errorf("CHANGELOG.md: %q is not a Keep a Changelog type", m[1])
		}
	}

	readme := readFile(t, "../README.md")
	for _, link := range []string{"](configs/packaging/CHANGELOG.md)", "](configs/packaging/LICENSE)"} {
		if !strings.Contains(readme, link) {
			t.Errorf("README.md has no link %q", link)
		}
	}

	df := readFile(t, "docker/Dockerfile")
	final := df[strings.LastIndex(df, "\nFROM "):]
	if !regexp.MustCompile(`(?m)^COPY configs/packaging/LICENSE configs/packaging/CHANGELOG.md /usr/share/doc/slsrelay/$`).MatchString(final) {
		t.Error("the image's last stage does not copy LICENSE and CHANGELOG.md to /usr/share/doc/slsrelay/")
	}
	ignore := readFile(t, "docker/Dockerfile.dockerignore")
	for _, keep := range []string{"!configs/packaging/LICENSE", "!configs/packaging/CHANGELOG.md"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(keep) + `$`).MatchString(ignore) {
			t.Errorf("the build context leaves out %s", strings.TrimPrefix(keep, "!"))
		}
	}
}
