//go:build !race

package main

// opsRace: the tests run without the race detector.
const opsRace = false
