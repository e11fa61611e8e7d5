// Package configs holds the shipped configuration files; Local is the one
// `make run` starts with, embedded so that programs that run a relay the
// way `make run` does (the bench's relay targets, the end-to-end tests)
// read the same bytes wherever they run.
package configs

import _ "embed"

// Local is configs/local.yaml.
//
//go:embed local.yaml
var Local []byte
