package relay

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// configs/reference.yaml is the complete reference: it loads strictly (so
// it has no key the structs lack) and sets every key the structs have, so
// a key added to a package's options without a line there fails here.
func TestReferenceSetsEveryKey(t *testing.T) {
	const path = "../../../configs/reference.yaml"
	if _, err := LoadConfig(path); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	fileKeys(root.Content[0], "", set)
	// Keys that exclude one another or change what the file runs as are
	// shown in comments instead: sls.endpoint (the file runs on
	// sls.stand_in, which excludes it) and catalog.static (an optional
	// catalog in place of SLS's), and auth (relay users need held keys
	// from the environment or files the reference cannot ship).
	commented := map[string]bool{
		"sls.endpoint": true, "catalog": true, "catalog.static": true,
		"catalog.static.projects": true, "catalog.static.access_keys": true,
		"auth": true, "auth.users_file": true, "auth.keys": true, "auth.users": true,
	}
	var missing []string
	for _, k := range typeKeys(reflect.TypeOf(Config{}), "") {
		if set[k] {
			continue
		}
		last := k[strings.LastIndex(k, ".")+1:]
		if commented[k] && regexp.MustCompile(`(?m)^\s*#.*\b`+regexp.QuoteMeta(last)+`:`).Match(raw) {
			continue
		}
		missing = append(missing, k)
	}
	if len(missing) > 0 {
		t.Errorf("configs/reference.yaml does not set %v", missing)
	}
}

// typeKeys lists the key paths of config type t ("listeners.tls.cert"),
// through inlined options; a list's or map's elements share their key.
func typeKeys(t reflect.Type, path string) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == reflect.TypeOf(yaml.Node{}) {
		return nil
	}
	var keys []string
	for name, ft := range yamlFields(t) {
		k := join(path, name)
		keys = append(keys, k)
		if ft.Kind() != reflect.Map {
			keys = append(keys, typeKeys(ft, k)...)
		}
	}
	sort.Strings(keys)
	return keys
}

// fileKeys records the key paths set in a YAML mapping, with the same
// spelling as typeKeys.
func fileKeys(n *yaml.Node, path string, set map[string]bool) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := join(path, n.Content[i].Value)
			set[k] = true
			fileKeys(n.Content[i+1], k, set)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			fileKeys(c, path, set)
		}
	}
}

// The test above must be able to fail: a key missing from a file is found.
func TestTypeKeysFindsMissing(t *testing.T) {
	keys := typeKeys(reflect.TypeOf(Config{}), "")
	for _, want := range []string{"limits.max_request_bytes", "sls.max_log_group_logs", "sls.key_field", "wal.high_watermark", "listeners.tls.self_signed_hosts", "throttle.max_throttle"} {
		if !slices.Contains(keys, want) {
			t.Errorf("typeKeys lacks %q: %v", want, keys)
		}
	}
}
