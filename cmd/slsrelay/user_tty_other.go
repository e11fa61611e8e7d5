//go:build !linux

package main

import (
	"errors"
	"os"
)

// isTerminal: off Linux, stdin is always read as it is (pipe the password).
func isTerminal(*os.File) bool { return false }

func disableEcho(*os.File) (func(), error) { return nil, errors.New("no terminal support") }
